// SPDX-License-Identifier: Apache-2.0
/** The organization's quotas where people use them: how much is in use, and a refusal for
 * being over one said beside the control that asked. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeServer, renderPage, type Answer, type Call } from "../test-utils";
import { FineTuning } from "./FineTuning";
import { Models } from "./Models";

afterEach(() => vi.unstubAllGlobals());

const ME = { organization: { id: "o1", slug: "acme", name: "Acme", created_at: "",
  quotas: { replicas: 16, gpus: 8, concurrent_fine_tunes: 4 } }, user: "dev@acme.test",
  api_key: null, role: "owner", capabilities: ["read", "write"] };
const MODEL = { id: "m1", name: "team-demo", kind: "base", base: null, public: false,
  source: "local", path: "/data/models/team-demo", architecture: "LlamaForCausalLM",
  context_length: 512, size_bytes: 1024, created_at: "" };
const OTHER = { ...MODEL, id: "m3", name: "second-copy", path: "/data/models/second-copy" };
const PUBLIC = { ...MODEL, id: "m2", name: "potluck-demo", public: true };
const DEPLOYMENTS = [
  { id: "d1", model: "team-demo", model_id: "m1", public: false, replicas: 2, state: "active",
    replica_counts: { ready: 2 }, created_at: "" },
  // The operator's public deployment counts for nobody; a stopped one asks for nothing.
  { id: "d2", model: "potluck-demo", model_id: "m2", public: true, replicas: 3, state: "active",
    replica_counts: { ready: 3 }, created_at: "" },
  { id: "d3", model: "second-copy", model_id: "m3", public: false, replicas: 5, state: "stopped",
    replica_counts: {}, created_at: "" },
];
const OVER = "this organization may use at most 16 replicas and has 2; asking for 15 more is "
  + "over its quota (the operator sets quotas with `potluck orgs quota`)";

function server(extra: (call: Call) => Answer | undefined = () => undefined) {
  return fakeServer((call) => {
    const answer = extra(call);
    if (answer) return answer;
    if (call.url === "/api/me") return { body: ME };
    if (call.url.startsWith("/api/models")) return { body: { results: [MODEL, OTHER, PUBLIC] } };
    if (call.url.startsWith("/api/deployments")) return { body: { results: DEPLOYMENTS } };
    return { body: { results: [], data: [] } };
  });
}

describe("Replica quota on the Models page", () => {
  it("says how many of the organization's replicas are in use", async () => {
    server();
    renderPage(<Models />);
    const quota = await screen.findByTestId("replica-quota");
    expect(quota).toHaveTextContent("2 of 16 replicas in use · at most 8 GPUs");
    expect(quota).not.toHaveClass("full");
  });

  it("says when the quota is reached", async () => {
    server((call) => (call.url === "/api/me" ? { body: { ...ME, organization: {
      ...ME.organization, quotas: { ...ME.organization.quotas, replicas: 2 } } } } : undefined));
    renderPage(<Models />);
    expect(await screen.findByTestId("replica-quota"))
      .toHaveTextContent("2 of 2 replicas in use — the organization's quota is reached");
  });

  it("says a deploy refused for the quota beside that model's Deploy button", async () => {
    const calls = server((call) => (call.url === "/api/deployments" && call.method === "POST"
      ? { status: 403, body: { replicas: [OVER] } } : undefined));
    renderPage(<Models />);
    const deploy = await screen.findByRole("button", { name: "Deploy second-copy" });
    await userEvent.click(deploy);
    const row = screen.getAllByRole("row").find((r) => r.textContent?.includes("second-copy"))!;
    expect(await within(row).findByText(OVER)).toHaveClass("field-error");
    expect(deploy).toHaveAccessibleDescription(OVER);
    expect(calls.find((c) => c.method === "POST")!.body).toEqual({ model: "second-copy", replicas: 1 });
  });

  it("says a scale refused for the quota beside the replica box", async () => {
    server((call) => (call.method === "PATCH" ? { status: 403, body: { replicas: [OVER] } } : undefined));
    renderPage(<Models />);
    const box = await screen.findByLabelText("Replicas", { selector: "#scale-m1" });
    await userEvent.clear(box);
    await userEvent.type(box, "16{Enter}");
    const form = screen.getByRole("form", { name: "Scale team-demo" });
    expect(await within(form).findByText(OVER)).toBeInTheDocument();
    expect(box).toHaveAttribute("aria-invalid", "true");
  });
});

describe("Fine-tuning quota", () => {
  const JOB = { id: "ftjob-1", model: "potluck-demo", status: "running", fine_tuned_model: null,
    training_file: "file-1", created_at: 0, finished_at: null, error: null, trained_tokens: null };
  const fineTuneServer = (extra: (call: Call) => Answer | undefined) => server((call) => {
    const answer = extra(call);
    if (answer) return answer;
    if (call.url.startsWith("/v1/fine_tuning/jobs")) {
      return { body: { data: [JOB, { ...JOB, id: "ftjob-2", status: "queued" },
        { ...JOB, id: "ftjob-3", status: "succeeded" }, { ...JOB, id: "ftjob-4", status: "paused" }] } };
    }
    if (call.url.startsWith("/v1/files")) {
      return { body: { data: [{ id: "file-1", filename: "owl.jsonl", bytes: 10, purpose: "fine-tune",
        status: "processed", created_at: 0 }] } };
    }
    return undefined;
  });

  it("says how many jobs run at once against the quota", async () => {
    fineTuneServer(() => undefined);
    renderPage(<FineTuning />);
    expect(await screen.findByTestId("fine-tune-quota"))
      .toHaveTextContent("2 of 4 fine-tuning jobs at once");
  });

  it("says a start refused for the quota (429 quota_exceeded) beside Start", async () => {
    const message = "this organization may use at most 4 fine-tuning jobs at once and has 4; "
      + "asking for 1 more is over its quota (the operator sets quotas with `potluck orgs quota`)";
    fineTuneServer((call) => (call.url === "/v1/fine_tuning/jobs" && call.method === "POST"
      ? { status: 429, body: { error: { message, type: "invalid_request_error", param: "model",
        code: "quota_exceeded" } } } : undefined));
    renderPage(<FineTuning />);
    const start = await screen.findByRole("button", { name: "Start fine-tuning" });
    await userEvent.click(start);
    const refusal = await screen.findByTestId("quota-refusal");
    expect(refusal).toHaveTextContent(message);
    expect(refusal).toHaveTextContent("a slot frees up when a job finishes");
    expect(start).toHaveAccessibleDescription(expect.stringContaining("at most 4 fine-tuning jobs"));
    expect(start.nextElementSibling).toBe(refusal);
  });
});
