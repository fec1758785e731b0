// SPDX-License-Identifier: Apache-2.0
import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeServer, renderPage } from "../test-utils";
import { Compliance, type Profile, type VariantCard } from "./Compliance";

afterEach(() => vi.unstubAllGlobals());

const FINANCE: Profile = {
  id: "p1", key: "finance", based_on: "finance", builtin: false, version: 2,
  updated_at: new Date().toISOString(),
  spec: {
    title: "Finance (PCI DSS, FINRA 2210)", description: "For banking assistants.",
    detectors: { CARD: { request: "redact", response: "mask" } },
    topics: [{ id: "personalised-investment-advice", title: "Personalised investment advice",
      direction: "request", action: "refuse", patterns: ["should i buy"], message: "No." }],
    disclaimer: "This is general information, not financial advice.",
    retention: { keep_content: false, days: 2190 },
  },
};
const PUBLISHED: VariantCard = {
  id: "v1", name: "potluck-demo:finance", state: "published", candidate_name: "c",
  profile: "finance", profile_version: 2, base: "potluck-demo",
  adapter: "ft:potluck-demo:default:finance:ftjob-1", fine_tune_job: "ftjob-1",
  created_at: new Date().toISOString(), published_at: new Date().toISOString(), error: "",
  card: { passed: true, suite: { version: "finance-suite-1", cases: 8, harness: "inspect-ai 0.3" },
    scores: { no_leak: { rate: 1, cases: 6, threshold: 1 },
      perplexity: { ratio: 1.02, candidate: 30.1, base: 29.5, threshold: 1.5 } },
    failing_cases: [] },
};
const FAILED: VariantCard = {
  ...PUBLISHED, id: "v2", state: "failed", published_at: null,
  error: "the evaluation gate failed: disclaimer",
  card: { passed: false, failed_thresholds: ["disclaimer"], failing_cases: [
    { id: "general-question", checks: { disclaimer: false, refusal: true }, error: "" }] },
};
const AUDIT = { chain: "org:1", size: 2, head_hash: "ab".repeat(32), next_before_seq: null,
  data: [
    { chain: "org:1", seq: 2, created_at: new Date().toISOString(), kind: "request",
      action: "inference.request", actor: "key:k1", target: "potluck-demo:finance",
      entry_hash: "x", data: { status: 200, outcome: "served", blocked: "",
        detections: { "response:CARD:mask": 1 } } },
    { chain: "org:1", seq: 1, created_at: new Date().toISOString(), kind: "admin",
      action: "compliance_profile.edited", actor: "user:1", target: "profile:finance",
      entry_hash: "y", data: { version: 2 } },
  ] };

function server(extra?: (url: string, method: string) => unknown) {
  return fakeServer((call) => {
    const answer = extra?.(call.url, call.method);
    if (answer) return answer as { status?: number; body?: unknown };
    if (call.url.startsWith("/api/compliance/profiles")) return { body: { data: [FINANCE] } };
    if (call.url.startsWith("/api/compliance/variants")) {
      return { body: { data: [PUBLISHED, FAILED] } };
    }
    return { body: AUDIT };
  });
}

describe("Compliance", () => {
  it("shows variants with their model cards and failing cases", async () => {
    server();
    renderPage(<Compliance />);
    const [published, failed] = await screen.findAllByRole("region", { name: "potluck-demo:finance" });
    expect(within(published).getByText("published")).toBeInTheDocument();
    expect(within(published).getByText(/finance-suite-1, 8 cases/)).toBeInTheDocument();
    expect(within(published).getByText("no_leak: 100% of 6 cases (needs 100%)")).toBeInTheDocument();
    expect(within(published).getByText("perplexity: ratio 1.020 (at most 1.5)")).toBeInTheDocument();
    const failing = within(failed).getByRole("list", { name: "Failing cases" });
    expect(failing).toHaveTextContent("general-question: disclaimer");
    expect(within(failed).getByText("the evaluation gate failed: disclaimer")).toBeInTheDocument();
  });

  it("shows a profile as rules a compliance officer reads, and saves an edit", async () => {
    const calls = server((url, method) => method === "PUT"
      ? { body: { ...FINANCE, version: 3 } } : undefined);
    renderPage(<Compliance />);
    const profile = await screen.findByRole("region", { name: /finance: Finance/ });
    const row = within(profile).getByRole("row", { name: /CARD/ });
    expect(row).toHaveTextContent("redact");
    expect(row).toHaveTextContent("mask");
    expect(within(profile).getByText(/Personalised investment advice/)).toBeInTheDocument();
    await userEvent.click(within(profile).getByRole("button", { name: "Edit as JSON" }));
    const editor = within(profile).getByLabelText("Profile finance (JSON)");
    await userEvent.clear(editor);
    await userEvent.click(editor);
    await userEvent.paste(JSON.stringify({ ...FINANCE.spec, disclaimer: "Not advice." }));
    await userEvent.click(within(profile).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(calls.some((c) => c.method === "PUT")).toBe(true));
    const put = calls.find((c) => c.method === "PUT")!;
    expect(put.url).toBe("/api/compliance/profiles/finance");
    expect((put.body as { spec: { disclaimer: string } }).spec.disclaimer).toBe("Not advice.");
  });

  it("lists the audit log, newest first, without values", async () => {
    server();
    renderPage(<Compliance />);
    const log = await screen.findByRole("region", { name: "Audit log" });
    await waitFor(() => expect(within(log).getAllByRole("row")).toHaveLength(3));
    expect(within(log).getByText("200 served; response:CARD:mask×1")).toBeInTheDocument();
    expect(within(log).getByText("compliance_profile.edited")).toBeInTheDocument();
    expect(within(log).getByRole("link", { name: "Export (JSON lines)" }))
      .toHaveAttribute("href", "/api/audit/export");
  });

  it("explains the page when the feature is not licensed, with what the server said", async () => {
    fakeServer(() => ({ status: 403, body: { detail: "compliance variants need an enterprise licence" } }));
    renderPage(<Compliance />);
    expect(await screen.findByText("Compliance variants are not available here")).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("compliance variants need an enterprise licence");
    expect(screen.queryByRole("region", { name: "Audit log" })).toBeNull();
  });
});
