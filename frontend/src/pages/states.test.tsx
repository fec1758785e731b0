// SPDX-License-Identifier: Apache-2.0
/** Every page's data has three states before it shows: loading, failed, empty. */
import type { ReactElement } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { fakeServer, renderPage } from "../test-utils";
import { Batches } from "./Batches";
import { Enterprise } from "./Enterprise";
import { FineTuning } from "./FineTuning";
import { Keys } from "./Keys";
import { Members } from "./Members";
import { Models } from "./Models";
import { Overview } from "./Overview";
import { Usage } from "./Usage";

afterEach(() => vi.unstubAllGlobals());

interface PageCase {
  name: string;
  page: ReactElement;
  /** The call whose answer the case varies. */
  url: string;
  loading: RegExp;
  empty: string;
  emptyBody: unknown;
}

const CASES: PageCase[] = [
  { name: "Overview", page: <Overview />, url: "/api/nodes", loading: /Loading nodes/,
    empty: "No node has joined yet", emptyBody: { results: [] } },
  { name: "Models", page: <Models />, url: "/api/models", loading: /Loading models/,
    empty: "No model is registered", emptyBody: { results: [] } },
  { name: "Fine-tuning", page: <FineTuning />, url: "/v1/fine_tuning/jobs?", loading: /Loading jobs/,
    empty: "No fine-tuning job yet", emptyBody: { data: [] } },
  { name: "Batches", page: <Batches />, url: "/v1/batches", loading: /Loading batches/,
    empty: "No batch yet", emptyBody: { data: [] } },
  { name: "Usage", page: <Usage />, url: "/api/usage?group_by=day&", loading: /Loading usage/,
    empty: "No usage in this period", emptyBody: { start: "2026-01-01", end: "2026-01-14",
      group_by: ["day"], rows: [] } },
  { name: "API keys", page: <Keys />, url: "/api/keys", loading: /Loading keys/,
    empty: "No API key yet", emptyBody: { results: [] } },
  { name: "Members", page: <Members />, url: "/api/members", loading: /Loading members/,
    empty: "No members", emptyBody: { results: [] } },
];

/** Everything but the varied call answers an empty list. */
function others(url: string) {
  if (url.startsWith("/api/usage")) return { body: { start: "", end: "", group_by: [], rows: [] } };
  if (url === "/api/extensions") return { body: { panels: [], features: [] } };
  return { body: { results: [], data: [] } };
}

function render(page: ReactElement) {
  renderPage(<Routes><Route path="/fine-tuning/:jobId?" element={page} />
    <Route path="*" element={page} /></Routes>, "/");
}

describe.each(CASES)("$name", ({ page, url, loading, empty, emptyBody }) => {
  it("shows that it is loading, not bare headers", async () => {
    fakeServer((call) => (call.url.startsWith(url) ? { never: true } : others(call.url)));
    render(page);
    expect(await screen.findByText(loading)).toBeInTheDocument();
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("says when the server failed, and tries again on request", async () => {
    let failing = true;
    const calls = fakeServer((call) => {
      if (!call.url.startsWith(url)) return others(call.url);
      return failing ? { status: 500, text: "<h1>Server Error (500)</h1>" } : { body: emptyBody };
    });
    render(page);
    const alert = await screen.findByText(/The server answered 500: try again/);
    expect(alert).toBeInTheDocument();
    expect(screen.queryByText(empty)).toBeNull();
    failing = false;
    const before = calls.filter((c) => c.url.startsWith(url)).length;
    await userEvent.click(screen.getAllByRole("button", { name: "Try again" })[0]);
    expect(await screen.findByText(empty)).toBeInTheDocument();
    expect(calls.filter((c) => c.url.startsWith(url)).length).toBeGreaterThan(before);
  });

  it("says what to do when there is nothing yet", async () => {
    fakeServer((call) => (call.url.startsWith(url) ? { body: emptyBody } : others(call.url)));
    render(page);
    expect(await screen.findByText(empty)).toBeInTheDocument();
  });
});

describe("Enterprise", () => {
  it("shows loading, then a failure with a way to try again", async () => {
    let answer: "never" | "fail" | "ok" = "never";
    fakeServer(() => (answer === "never" ? { never: true } : answer === "fail"
      ? { status: 502, text: "Bad gateway" } : { body: { panels: [], features: [] } }));
    const first = renderPage(<Enterprise />);
    expect(await screen.findByText(/Loading extensions/)).toBeInTheDocument();
    first.unmount();
    answer = "fail";
    renderPage(<Enterprise />);
    expect(await screen.findByText(/The server answered 502/)).toBeInTheDocument();
    answer = "ok";
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(screen.getByText(/single sign-on/)).toBeInTheDocument());
  });
});
