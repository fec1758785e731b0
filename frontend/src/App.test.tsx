// SPDX-License-Identifier: Apache-2.0
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { SESSION, fakeServer, renderApp } from "./test-utils";

beforeEach(() => { localStorage.clear(); sessionStorage.clear(); });
afterEach(() => vi.unstubAllGlobals());

const KEYS = { results: [{ id: "k1", name: "ci", prefix: "pot_abc", scopes: ["read"],
  created_by: null, created_at: "", expires_at: null, last_used_at: null, revoked_at: null,
  is_active: true }] };

describe("An expired session", () => {
  it("returns to sign-in, then to the same page once signed in again", async () => {
    // The browser still holds the session cookie, but the server has ended the session.
    let alive = false;
    const calls = fakeServer((call) => {
      if (call.url === "/api/session" && call.method === "GET") return { body: SESSION };
      if (call.url === "/api/session" && call.method === "POST") {
        alive = true;
        return { body: SESSION };
      }
      if (call.url.startsWith("/api/session/providers")) return { body: { providers: [] } };
      if (call.url.startsWith("/api/keys")) {
        return alive ? { body: KEYS } : { status: 401, body: {
          detail: "Authentication credentials were not provided." } };
      }
      return { body: { results: [] } };
    });
    renderApp("/keys");
    expect(await screen.findByRole("heading", { name: "Sign in to Potluck" })).toBeInTheDocument();
    expect(screen.getByTestId("session-ended")).toHaveTextContent("Your session has ended");
    expect(screen.queryByText(/Authentication credentials were not provided/)).toBeNull();
    expect(screen.queryByRole("navigation", { name: "Console" })).toBeNull();

    await userEvent.type(screen.getByLabelText("Email or username"), "dev@acme.test");
    await userEvent.type(screen.getByLabelText("Password"), "hunter2");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("heading", { level: 1, name: "API keys" })).toBeInTheDocument();
    expect(await screen.findByText("ci")).toBeInTheDocument();
    expect(screen.queryByTestId("session-ended")).toBeNull();
    expect(calls.filter((c) => c.url.startsWith("/api/keys")).length).toBeGreaterThanOrEqual(2);
  });
});

describe("Navigation", () => {
  function console_() {
    fakeServer((call) => (call.url === "/api/session" ? { body: SESSION }
      : call.url.startsWith("/api/usage") ? { body: { rows: [], group_by: ["day"], start: "2026-01-01", end: "2026-01-01" } }
        : call.url === "/api/extensions" ? { body: { panels: [], features: [] } }
          : { body: { results: [], data: [] } }));
  }

  it("says when a page does not exist, instead of showing the Overview", async () => {
    console_();
    renderApp("/no-such-page");
    expect(await screen.findByRole("heading", { level: 1, name: "Page not found" })).toBeInTheDocument();
    expect(within(screen.getByRole("main")).getByRole("link", { name: "Overview" }))
      .toHaveAttribute("href", "/");
    await waitFor(() => expect(document.title).toBe("Page not found · Potluck console"));
  });

  it("names the page in the title and moves focus to its heading", async () => {
    console_();
    renderApp("/");
    await screen.findByRole("heading", { level: 1, name: "Overview" });
    expect(document.title).toBe("Overview · Potluck console");
    const nav = screen.getByRole("navigation", { name: "Console" });
    await userEvent.click(screen.getAllByRole("link", { name: "Models" }).find((a) => nav.contains(a))!);
    const heading = await screen.findByRole("heading", { level: 1, name: "Models" });
    await waitFor(() => expect(document.activeElement).toBe(heading));
    expect(document.title).toBe("Models · Potluck console");
  });

  it("folds the navigation behind a Menu button (shown on phones)", async () => {
    console_();
    renderApp("/");
    const menu = await screen.findByRole("button", { name: "Menu" });
    expect(menu).toHaveAttribute("aria-expanded", "false");
    await userEvent.click(menu);
    expect(screen.getByRole("button", { name: "Close menu" })).toHaveAttribute("aria-expanded", "true");
    expect(screen.getByRole("navigation", { name: "Console" })).toHaveClass("open");
    const nav = screen.getByRole("navigation", { name: "Console" });
    await userEvent.click(screen.getAllByRole("link", { name: "Usage" }).find((a) => nav.contains(a))!);
    await screen.findByRole("heading", { level: 1, name: "Usage" });
    expect(screen.getByRole("button", { name: "Menu" })).toHaveAttribute("aria-expanded", "false");
  });

  it("opens a fine-tuning job from its own address", async () => {
    fakeServer((call) => {
      if (call.url === "/api/session") return { body: SESSION };
      if (call.url === "/v1/fine_tuning/jobs/ftjob-9") {
        return { body: { id: "ftjob-9", model: "potluck-demo", status: "succeeded",
          fine_tuned_model: "ft:potluck-demo:acme:owl:9", training_file: "file-1", created_at: 0,
          finished_at: 1, error: null, trained_tokens: 10, user_provided_suffix: "owl" } };
      }
      return { body: { results: [], data: [] } };
    });
    renderApp("/fine-tuning/ftjob-9");
    expect(await screen.findByRole("heading", { level: 2, name: "Job owl · ftjob-9" })).toBeInTheDocument();
    expect(await screen.findByTestId("job-status")).toHaveTextContent("succeeded");
  });
});
