// SPDX-License-Identifier: Apache-2.0
/** What a person does on each page: confirmations, scaling, fine-tuning, batches, usage. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { fakeServer, renderPage } from "../test-utils";
import type { FineTuneJob } from "../api/types";
import { modelLabel } from "../components/ui";
import { Batches } from "./Batches";
import { FineTuning, nameFiles, uploadAdvice } from "./FineTuning";
import { Keys } from "./Keys";
import { Members } from "./Members";
import { Models, pathHint } from "./Models";
import { Overview } from "./Overview";
import { Usage, everyDay, periodError } from "./Usage";

afterEach(() => vi.unstubAllGlobals());

const MODEL = { id: "m1", name: "team-demo", kind: "base", base: null, public: false,
  source: "local", path: "/data/models/team-demo", architecture: "LlamaForCausalLM",
  context_length: 512, size_bytes: 1024, created_at: "" };
const PUBLIC = { ...MODEL, id: "m2", name: "potluck-demo", public: true,
  path: "/data/models/potluck-demo" };
const DEPLOYMENT = { id: "d1", model: "team-demo", model_id: "m1", public: false, replicas: 2,
  state: "active", replica_counts: { ready: 1 }, created_at: "" };

function modelsServer(extra: (call: { url: string; method: string; body: unknown }) =>
  { status?: number; body?: unknown } | undefined = () => undefined) {
  return fakeServer((call) => {
    const answer = extra(call);
    if (answer) return answer;
    if (call.url.startsWith("/api/models")) return { body: { results: [MODEL, PUBLIC] } };
    if (call.url.startsWith("/api/deployments")) {
      return { body: { results: [DEPLOYMENT, { ...DEPLOYMENT, id: "d2", model: "potluck-demo",
        model_id: "m2", public: true }] } };
    }
    return { body: {} };
  });
}

describe("Destructive actions ask first", () => {
  it("undeploys only once confirmed, in a dialog that can keep it", async () => {
    const calls = modelsServer();
    renderPage(<Models />);
    const undeploy = await screen.findByRole("button", { name: "Undeploy team-demo" });
    expect(undeploy).toHaveClass("danger");
    await userEvent.click(undeploy);
    const dialog = screen.getByRole("alertdialog", { name: "Undeploy team-demo?" });
    expect(dialog).toHaveTextContent("requests for it are refused");
    expect(within(dialog).getByRole("button", { name: "Keep it" })).toHaveFocus();
    await userEvent.click(within(dialog).getByRole("button", { name: "Keep it" }));
    expect(screen.queryByRole("alertdialog")).toBeNull();
    await userEvent.click(undeploy);
    await userEvent.keyboard("{Escape}");
    expect(calls.filter((c) => c.method === "DELETE")).toHaveLength(0);

    await userEvent.click(undeploy);
    await userEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Undeploy" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "DELETE").map((c) => c.url))
      .toEqual(["/api/deployments/d1"]));
  });

  it("cancels a fine-tuning job only once told how many steps are lost", async () => {
    const job: FineTuneJob = { id: "ftjob-1", model: "potluck-demo", status: "running",
      fine_tuned_model: null, training_file: "file-1", created_at: 0, finished_at: null,
      error: null, trained_tokens: null, user_provided_suffix: "owl" };
    const calls = fakeServer((call) => {
      if (call.url === "/v1/fine_tuning/jobs/ftjob-1") return { body: job };
      if (call.url.endsWith("/cancel")) return { body: { ...job, status: "cancelled" } };
      if (call.url.startsWith("/api/fine-tuning/jobs/ftjob-1/metrics")) {
        return { body: { job_id: "ftjob-1", status: "running", estimated_finish: null,
          steps_recorded: 54, bucket_steps: 1, points: [{ step: 54, train_loss: 1, valid_loss: null }],
          latest: { step: 54, total_steps: 104, epoch: 6.75, eta_seconds: 80 } } };
      }
      return { body: { data: [], results: [] } };
    });
    renderPage(<Routes><Route path="/fine-tuning/:jobId?" element={<FineTuning />} /></Routes>,
      "/fine-tuning/ftjob-1");
    expect(await screen.findByText(/Step 54 of 104 · epoch 7 · about 1 min 20 s left/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Cancel" }));
    const dialog = screen.getByRole("alertdialog", { name: "Cancel this fine-tuning job?" });
    expect(dialog).toHaveTextContent("54 steps of training done so far are lost");
    await userEvent.click(within(dialog).getByRole("button", { name: "Keep it" }));
    expect(calls.some((c) => c.url.endsWith("/cancel"))).toBe(false);
    await userEvent.click(screen.getByRole("button", { name: "Cancel" }));
    await userEvent.click(screen.getByRole("button", { name: "Cancel the job" }));
    expect(await screen.findByTestId("job-status")).toHaveTextContent("cancelled");
  });

  it("revokes a key, removes a member and changes a role only when confirmed", async () => {
    const key = { id: "k1", name: "ci", prefix: "pot_abc", scopes: ["read"], created_by: null,
      created_at: "", expires_at: null, last_used_at: null, revoked_at: null, is_active: true };
    const calls = fakeServer((call) => (call.url.startsWith("/api/keys") && call.method === "GET"
      ? { body: { results: [key] } } : call.url.startsWith("/api/members") && call.method === "GET"
        ? { body: { results: [{ id: "p1", email: "bob@acme.test", role: "member", created_at: "" }] } }
        : { body: {} }));
    const keys = renderPage(<Keys />);
    await userEvent.click(await screen.findByRole("button", { name: "Revoke ci" }));
    await userEvent.click(screen.getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(calls.some((c) => c.url === "/api/keys/k1/revoke")).toBe(true));
    keys.unmount();

    renderPage(<Members />);
    const role = await screen.findByLabelText("Role of bob@acme.test");
    await userEvent.selectOptions(role, "admin");
    expect(screen.getByRole("alertdialog", { name: "Make bob@acme.test an admin?" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Keep it" }));
    expect(role).toHaveValue("member");
    await userEvent.selectOptions(role, "admin");
    await userEvent.click(screen.getByRole("button", { name: "Change role" }));
    await userEvent.click(screen.getByRole("button", { name: "Remove bob@acme.test" }));
    await userEvent.click(screen.getByRole("button", { name: "Remove" }));
    await waitFor(() => expect(calls.filter((c) => c.url === "/api/members/p1")
      .map((c) => [c.method, c.body])).toEqual([["PATCH", { role: "admin" }], ["DELETE", null]]));
  });
});

describe("Models", () => {
  it("scales with Enter, and says beside the box when a count is refused", async () => {
    const calls = modelsServer((call) => (call.method === "PATCH"
      ? { status: 400, body: { replicas: ["this node pool has room for 4 replicas"] } } : undefined));
    renderPage(<Models />);
    const box = await screen.findByLabelText("Replicas", { selector: "#scale-m1" });
    await userEvent.clear(box);
    await userEvent.type(box, "99{Enter}");
    expect(screen.getByText("From 0 to 16 replicas.")).toBeInTheDocument();
    expect(box).toHaveAttribute("aria-invalid", "true");
    expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(0);

    await userEvent.clear(box);
    await userEvent.type(box, "5{Enter}");
    expect(await screen.findByText("this node pool has room for 4 replicas")).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "PATCH").map((c) => c.body)).toEqual([{ replicas: 5 }]);
  });

  it("explains a public model, names the real command, and suggests a path it accepts", async () => {
    modelsServer();
    renderPage(<Models />);
    expect(await screen.findByText(/managed by the server's operator/)).toBeInTheDocument();
    expect(screen.getByText(/A public model is shared by every organization/)).toBeInTheDocument();
    expect(screen.getByLabelText("Local directory")).toHaveAttribute("placeholder", "/data/models/my-model");
    expect(pathHint([])).toMatch(/model roots/);
    fakeServer(() => ({ body: { results: [] } }));
    renderPage(<Models />);
    expect((await screen.findAllByText("potluck models add"))[0]).toBeInTheDocument();
  });
});

describe("Overview", () => {
  it("leaves undeployed models out and lists CPU features one by one", async () => {
    fakeServer((call) => {
      if (call.url.startsWith("/api/nodes")) return { body: { results: [{ name: "cpu-1", hostname: "h",
        state: "online", cpu_count: 2, cpu_isa: ["avx2", "avx512f", "avx512_bf16"], memory_bytes: 2 ** 30,
        gpus: [], engine: "vllm-cpu", started_at: null, last_heartbeat: null }] } };
      if (call.url.startsWith("/api/deployments")) return { body: { results: [
        { ...DEPLOYMENT, state: "stopped", replicas: 1, model: "old-model" }] } };
      if (call.url.startsWith("/api/usage")) return { body: { rows: [] } };
      return { body: { results: [] } };
    });
    renderPage(<Overview />);
    expect(await screen.findByText("Nothing is deployed")).toBeInTheDocument();
    expect(screen.queryByText("old-model")).toBeNull();
    expect(screen.queryByText(/No replica is running yet/)).toBeNull();
    const features = screen.getByRole("list", { name: "CPU features" });
    expect(within(features).getAllByRole("listitem").map((li) => li.textContent))
      .toEqual(["avx2", "avx512f", "avx512_bf16"]);
  });
});

describe("Fine-tuning", () => {
  const job = (over: Partial<FineTuneJob>): FineTuneJob => ({ id: "ftjob-1", model: "potluck-demo",
    status: "queued", fine_tuned_model: null, training_file: "file-owl", created_at: 0,
    finished_at: null, error: null, trained_tokens: null, user_provided_suffix: "owl", ...over });

  it("plots the whole run from the metrics endpoint, not a page of events", async () => {
    const points = Array.from({ length: 250 }, (_, i) => ({ step: i + 1, train_loss: 3 - i / 100,
      valid_loss: null }));
    fakeServer((call) => {
      if (call.url === "/v1/fine_tuning/jobs/ftjob-1") return { body: job({ status: "succeeded" }) };
      if (call.url.startsWith("/api/fine-tuning/jobs/ftjob-1/metrics")) {
        return { body: { job_id: "ftjob-1", status: "succeeded", estimated_finish: null,
          steps_recorded: 250, bucket_steps: 1, latest: { step: 250, total_steps: 250 }, points } };
      }
      if (call.url.startsWith("/v1/files")) return { body: { data: [{ id: "file-owl",
        filename: "owl.jsonl", bytes: 10, purpose: "fine-tune", status: "processed", created_at: 0 }] } };
      if (call.url.startsWith("/v1/fine_tuning/jobs/ftjob-1/events")) return { body: { data: [
        { id: "e2", created_at: 0, level: "info", message: "Training succeeded", type: "message", data: null },
        { id: "e1", created_at: 0, level: "info", message: "Validating training file: file-owl", type: "message", data: null },
      ], has_more: true } };
      return { body: { data: [], results: [] } };
    });
    renderPage(<Routes><Route path="/fine-tuning/:jobId?" element={<FineTuning />} /></Routes>,
      "/fine-tuning/ftjob-1");
    const chart = await screen.findByTestId("loss-chart");
    expect(chart).toHaveAttribute("data-points", "250");
    expect(chart).toHaveAttribute("data-first-step", "1");
    const log = screen.getByTestId("event-log");
    expect(log.tagName).toBe("UL");  // no "1." on the newest
    expect(await within(log).findByText(/owl\.jsonl \(file-owl\)/)).toBeInTheDocument();
    expect(screen.getByText(/newest first, the latest 100/)).toBeInTheDocument();
  });

  it("says what a queued job waits for, and names jobs by suffix and file", async () => {
    fakeServer((call) => {
      if (call.url.startsWith("/v1/fine_tuning/jobs?")) return { body: { data: [job({})] } };
      if (call.url === "/v1/fine_tuning/jobs/ftjob-1") return { body: job({}) };
      if (call.url.startsWith("/v1/files")) return { body: { data: [{ id: "file-owl",
        filename: "owl.jsonl", bytes: 10, purpose: "fine-tune", status: "processed", created_at: 0 }] } };
      if (call.url.startsWith("/api/fine-tuning")) return { body: { points: [], latest: null,
        steps_recorded: 0, bucket_steps: 1 } };
      return { body: { data: [], results: [] } };
    });
    renderPage(<Routes><Route path="/fine-tuning/:jobId?" element={<FineTuning />} /></Routes>,
      "/fine-tuning/ftjob-1");
    expect(await screen.findByRole("progressbar", { name: "Waiting for a training slot" })).toBeInTheDocument();
    expect(screen.queryByText(/Training…/)).toBeNull();
    const row = (await screen.findByRole("link", { name: /owl ftjob-1/ })).closest("tr")!;
    expect(within(row).getByText("owl.jsonl")).toBeInTheDocument();
  });

  it("opens the new job at its own address once started", async () => {
    fakeServer((call) => {
      if (call.method === "POST" && call.url === "/v1/fine_tuning/jobs") return { body: job({ id: "ftjob-new" }) };
      if (call.url === "/v1/fine_tuning/jobs/ftjob-new") return { body: job({ id: "ftjob-new" }) };
      if (call.url.startsWith("/v1/files")) return { body: { data: [{ id: "file-owl",
        filename: "owl.jsonl", bytes: 10, purpose: "fine-tune", status: "processed", created_at: 0 }] } };
      if (call.url.startsWith("/api/models")) return { body: { results: [PUBLIC] } };
      return { body: { data: [], results: [] } };
    });
    renderPage(<Routes><Route path="/fine-tuning/:jobId?" element={<FineTuning />} /></Routes>,
      "/fine-tuning");
    await userEvent.click(await screen.findByRole("button", { name: "Start fine-tuning" }));
    const heading = await screen.findByRole("heading", { level: 2, name: "Job owl · ftjob-new" });
    await waitFor(() => expect(heading).toHaveFocus());
  });

  it("asks to fix a line only when the refusal names one", () => {
    expect(uploadAdvice("line 3: no assistant message")).toMatch(/fix that line/);
    expect(uploadAdvice("the file holds no examples")).not.toMatch(/that line/);
    expect(nameFiles("from file-x", undefined)).toBe("from file-x");
  });
});

describe("Batches", () => {
  it("creates a batch from an uploaded file for the endpoint chosen", async () => {
    const calls = fakeServer((call) => {
      if (call.url.startsWith("/v1/files") && call.method === "POST") {
        return { body: { id: "file-reqs", filename: "requests.jsonl", bytes: 200, purpose: "batch",
          status: "processed", created_at: 0 } };
      }
      if (call.url.startsWith("/v1/files")) {
        const uploaded = calls.some((c) => c.method === "POST" && c.url.startsWith("/v1/files"));
        return { body: { data: uploaded ? [{ id: "file-reqs", filename: "requests.jsonl",
          bytes: 200, purpose: "batch", status: "processed", created_at: 0 }] : [] } };
      }
      if (call.url === "/v1/batches" && call.method === "POST") {
        return { body: { id: "batch_1", status: "validating", endpoint: "/v1/completions",
          input_file_id: "file-reqs", output_file_id: null, error_file_id: null, created_at: 0,
          request_counts: { total: 0, completed: 0, failed: 0 } } };
      }
      return { body: { data: [] } };
    });
    renderPage(<Batches />);
    expect(await screen.findByText("No requests file yet")).toBeInTheDocument();
    const file = new File(['{"custom_id":"1","method":"POST","url":"/v1/completions","body":{}}\n'],
      "requests.jsonl", { type: "application/jsonl" });
    await userEvent.upload(screen.getByLabelText(/Requests file/), file);
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    const endpoint = await screen.findByLabelText("Endpoint");
    await userEvent.selectOptions(endpoint, "/v1/completions");
    expect(screen.getByLabelText("Input file")).toHaveValue("file-reqs");
    await userEvent.click(screen.getByRole("button", { name: "Create batch" }));
    expect(await screen.findByText("Batch batch_1 created: validating.")).toBeInTheDocument();
    const upload = calls.find((c) => c.method === "POST" && c.url === "/v1/files")!;
    expect((upload.body as FormData).get("purpose")).toBe("batch");
    expect(calls.find((c) => c.url === "/v1/batches" && c.method === "POST")!.body).toEqual(
      { input_file_id: "file-reqs", endpoint: "/v1/completions", completion_window: "24h" });
  });
});

describe("Usage", () => {
  it("plots every day of the period, zeros included", () => {
    const row = { day: "2026-01-03", requests: 2, prompt_tokens: 5, completion_tokens: 5,
      total_tokens: 10, errors: 0, latency_p50_ms: 1, latency_p95_ms: 2, latency_p99_ms: 3 };
    const days = everyDay({ start: "2026-01-01", end: "2026-01-05", group_by: ["day"], rows: [row] });
    expect(days.map((d) => [d.day, d.total_tokens])).toEqual([["2026-01-01", 0], ["2026-01-02", 0],
      ["2026-01-03", 10], ["2026-01-04", 0], ["2026-01-05", 0]]);
  });

  it("says a period is backwards in its own words, without asking the server", async () => {
    const calls = fakeServer(() => ({ body: { start: "", end: "", group_by: [], rows: [] } }));
    renderPage(<Usage />);
    await screen.findByText("No usage in this period");
    const asked = calls.length;
    const from = screen.getByLabelText("From");
    await userEvent.clear(from);
    await userEvent.type(from, "2099-01-01");
    expect(screen.getByText("The first day is after the last: swap them.")).toBeInTheDocument();
    expect(calls.length).toBe(asked);
    expect(periodError("2026-01-01", "2026-01-02")).toBeUndefined();
  });
});

describe("API keys", () => {
  it("keeps revoked and expired keys out of the way until asked", async () => {
    const key = (id: string, active: boolean) => ({ id, name: `key ${id}`, prefix: `pot_${id}`,
      scopes: ["inference"], created_by: null, created_at: "", expires_at: null, last_used_at: null,
      revoked_at: active ? null : "2026-01-01T00:00:00Z", is_active: active });
    fakeServer(() => ({ body: { results: [key("a", true), key("b", false), key("c", false)] } }));
    renderPage(<Keys />);
    expect(await screen.findByText("key a")).toBeInTheDocument();
    expect(screen.queryByText("key b")).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Show 2 revoked or expired" }));
    expect(screen.getByText("key b")).toBeInTheDocument();
  });

  it("asks for a scope in its own words", async () => {
    const calls = fakeServer(() => ({ body: { results: [] } }));
    renderPage(<Keys />);
    await userEvent.type(await screen.findByLabelText("Name"), "ci");
    for (const scope of ["inference", "read", "write"]) {
      await userEvent.click(screen.getByRole("checkbox", { name: scope }));
    }
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    expect(screen.getByText("Choose at least one scope.")).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);
  });
});

it("tells tuned models apart by suffix and id", () => {
  expect(modelLabel("ft:potluck-demo:acme:owl:abc")).toBe("owl · abc (tuned potluck-demo)");
  expect(modelLabel("ft:potluck-demo:acme::abc")).toBe("abc (tuned potluck-demo)");
  expect(modelLabel("potluck-demo")).toBe("potluck-demo");
});
