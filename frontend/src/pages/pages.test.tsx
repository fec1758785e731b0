// SPDX-License-Identifier: Apache-2.0
import { afterEach, describe, expect, it, vi } from "vitest";
import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { fakeServer, renderPage } from "../test-utils";
import { SignIn } from "./SignIn";
import { NewKeyForm, SecretOnce } from "./Keys";
import { Enterprise } from "./Enterprise";
import { FineTuning } from "./FineTuning";
import { Models } from "./Models";

afterEach(() => vi.unstubAllGlobals());

describe("Sign in", () => {
  it("signs in with the password and hands back the session", async () => {
    const session = { authenticated: true, user: { email: "dev@acme.test" }, organizations: [] };
    const calls = fakeServer((call) => call.url.startsWith("/api/session/providers")
      ? { body: { providers: [] } } : { body: session });
    const signedIn = vi.fn();
    renderPage(<SignIn onSignedIn={signedIn} />);
    await userEvent.type(screen.getByLabelText("Email or username"), "dev@acme.test");
    await userEvent.type(screen.getByLabelText("Password"), "hunter2");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(signedIn).toHaveBeenCalledWith(session));
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.body).toEqual({ email: "dev@acme.test", password: "hunter2" });
    expect(screen.queryByRole("link")).toBeNull();
  });

  it("says what went wrong", async () => {
    fakeServer((call) => call.url.startsWith("/api/session/providers")
      ? { body: { providers: [] } }
      : { status: 400, body: { non_field_errors: ["invalid email or password"] } });
    renderPage(<SignIn onSignedIn={() => undefined} />);
    await userEvent.type(screen.getByLabelText("Email or username"), "admin");
    await userEvent.type(screen.getByLabelText("Password"), "wrong");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("invalid email or password");
  });

  it("when throttled (429), says so and keeps the button off for Retry-After seconds", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const detail = "too many failed sign-ins; try again in 3 seconds";
      const calls = fakeServer((call) => call.url.startsWith("/api/session/providers")
        ? { body: { providers: [] } }
        : { status: 429, body: { detail }, headers: { "Retry-After": "3" } });
      renderPage(<SignIn onSignedIn={() => undefined} />);
      const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
      await user.type(screen.getByLabelText("Email or username"), "dev@acme.test");
      await user.type(screen.getByLabelText("Password"), "guess");
      await user.click(screen.getByRole("button", { name: "Sign in" }));
      expect(await screen.findByRole("alert")).toHaveTextContent(detail);
      const button = screen.getByRole("button", { name: /^Try again in [23] s$/ });
      expect(button).toBeDisabled();
      await user.type(screen.getByLabelText("Password"), "{Enter}");
      expect(calls.filter((c) => c.method === "POST")).toHaveLength(1);
      await act(async () => { vi.advanceTimersByTime(3500); });
      expect(screen.getByRole("button", { name: "Sign in" })).toBeEnabled();
      expect(screen.getByRole("status")).toHaveTextContent("You can try again now.");
      expect(screen.queryByText(detail)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows an SSO button when an extension offers one", async () => {
    fakeServer(() => ({ body: { providers: [
      { key: "oidc", title: "Sign in with Acme SSO", start_url: "/sso/oidc/start?org=acme" }] } }));
    renderPage(<SignIn onSignedIn={() => undefined} />);
    const link = await screen.findByRole("link", { name: "Sign in with Acme SSO" });
    expect(link).toHaveAttribute("href", "/sso/oidc/start?org=acme");
  });
});

describe("API keys", () => {
  it("shows a field's error inline under it", async () => {
    fakeServer(() => ({ status: 403, body: { scopes: ["you cannot grant the scope 'admin'"] } }));
    renderPage(<NewKeyForm onCreated={() => undefined} />);
    await userEvent.type(screen.getByLabelText("Name"), "ci");
    await userEvent.click(screen.getByRole("checkbox", { name: "admin" }));
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByText("you cannot grant the scope 'admin'")).toBeInTheDocument();
  });

  it("shows the secret once, with a copy button", () => {
    renderPage(<SecretOnce secret="pot_abc123" onDone={() => undefined} />);
    expect(screen.getByTestId("new-secret")).toHaveTextContent("pot_abc123");
    expect(screen.getByText(/shown only once/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Copy" })).toBeInTheDocument();
  });
});

describe("Models", () => {
  it("shows the registry's validation error under the path", async () => {
    fakeServer((call) => {
      if (call.method === "POST") return { status: 400, body: { path: ["/tmp/x has no config.json"] } };
      return { body: { results: [] } };
    });
    renderPage(<Models />);
    expect(await screen.findByText("No model is registered")).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Name"), "mine");
    await userEvent.type(screen.getByLabelText("Local directory"), "/tmp/x");
    await userEvent.click(screen.getByRole("button", { name: "Register" }));
    expect(await screen.findByText("/tmp/x has no config.json")).toBeInTheDocument();
  });
});

describe("Enterprise", () => {
  it("says what the enterprise edition adds when no panel is registered", async () => {
    fakeServer(() => ({ body: { panels: [], features: [] } }));
    renderPage(<Enterprise />);
    expect(await screen.findByText(/single sign-on/)).toBeInTheDocument();
    expect(screen.getByText(/potluck license install/)).toBeInTheDocument();
  });

  it("shows the panels extensions register", async () => {
    fakeServer((call) => call.url === "/api/extensions"
      ? { body: { panels: [{ key: "license", title: "Licence", api_path: "/api/license",
        description: "Your licence" }], features: [] } }
      : { body: { licensee: "Acme Corp", status: "valid" } });
    renderPage(<Enterprise />);
    expect(await screen.findByText("Acme Corp")).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "Licence" })).toBeInTheDocument();
  });
});

describe("Fine-tuning", () => {
  it("pauses a running job through the endpoint, then offers to resume it", async () => {
    const job = { id: "ftjob-abc", model: "potluck-demo", status: "running",
      fine_tuned_model: null, training_file: "file-1", created_at: 0, finished_at: null,
      error: null, trained_tokens: null, user_provided_suffix: "owl" };
    const calls = fakeServer((call) => {
      if (call.method === "POST" && call.url.endsWith("/pause")) {
        job.status = "paused";
        return { body: job };
      }
      if (call.url.startsWith("/v1/fine_tuning/jobs?")) return { body: { data: [job] } };
      if (call.url === "/v1/fine_tuning/jobs/ftjob-abc") return { body: job };
      if (call.url.startsWith("/api/fine-tuning/jobs/ftjob-abc/metrics")) {
        return { body: { job_id: job.id, status: job.status, estimated_finish: null,
          steps_recorded: 0, bucket_steps: 1, latest: null, points: [] } };
      }
      if (call.url.startsWith("/api/models")) return { body: { results: [] } };
      return { body: { data: [] } };  // files, events
    });
    renderPage(<Routes><Route path="/fine-tuning/:jobId?" element={<FineTuning />} /></Routes>,
      "/fine-tuning");
    await userEvent.click(await screen.findByRole("link", { name: /owl ftjob-abc/ }));
    expect(await screen.findByRole("button", { name: "Pause" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Resume" })).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Pause" }));
    expect(await screen.findByRole("button", { name: "Resume" })).toBeInTheDocument();
    const posts = calls.filter((c) => c.method === "POST");
    expect(posts.map((c) => c.url)).toEqual(["/v1/fine_tuning/jobs/ftjob-abc/pause"]);
    expect(screen.getByTestId("job-status")).toHaveTextContent("paused");
    expect(screen.queryByRole("button", { name: "Pause" })).toBeNull();
    expect(screen.getByRole("button", { name: "Cancel" })).toBeInTheDocument();
  });
});

describe("Overview", () => {
  it("shows replicas with their live state and a failure's reason", async () => {
    const { Overview } = await import("./Overview");
    fakeServer((call) => {
      if (call.url.startsWith("/api/nodes")) return { body: { results: [{ name: "gpu-1",
        hostname: "h", state: "online", cpu_count: 8, cpu_isa: "avx2", memory_bytes: 2 ** 34,
        gpus: [], engine: "vllm", started_at: null, last_heartbeat: new Date().toISOString() }] } };
      if (call.url.startsWith("/api/deployments")) return { body: { results: [{ id: "d1",
        model: "llama", model_id: "m1", public: false, replicas: 2, state: "active",
        replica_counts: {}, created_at: "" }] } };
      if (call.url.startsWith("/api/replicas")) return { body: { results: [
        { id: "r1", deployment: "d1", model: "llama", node: "gpu-1", state: "ready", restarts: 0,
          reason: null, ready_at: null },
        { id: "r2", deployment: "d1", model: "llama", node: "gpu-1", state: "failed", restarts: 3,
          reason: "CUDA out of memory", ready_at: null },
        { id: "r3", deployment: "d1", model: "llama", node: "gpu-1", state: "stopped", restarts: 0,
          reason: null, ready_at: null }] } };
      expect(call.url).toContain("group_by=hour");
      expect(call.url).toContain("since=");
      const hour = (h: string, requests: number) => ({ hour: h, requests, prompt_tokens: 10,
        completion_tokens: 5, total_tokens: 15, errors: 0, latency_p50_ms: 10,
        latency_p95_ms: requests, latency_p99_ms: 30 });
      return { body: { start: "", end: "", group_by: ["hour"],
        rows: [hour("2026-01-01T09:00:00+00:00", 7), hour("2026-01-01T10:00:00+00:00", 5)] } };
    });
    renderPage(<Overview />);
    expect(await screen.findByText(/CUDA out of memory/)).toBeInTheDocument();
    expect(screen.getByText("READY")).toBeInTheDocument();
    expect(screen.getByText("FAILED")).toBeInTheDocument();
    expect(screen.queryByText("STOPPED")).toBeNull();
    expect(await screen.findByTestId("requests-hour")).toHaveTextContent("12");
    expect(screen.getByText("16.0 GB")).toBeInTheDocument();
  });

  it("says what to do when nothing is deployed", async () => {
    const { Overview } = await import("./Overview");
    fakeServer((call) => call.url.startsWith("/api/usage")
      ? { body: { rows: [], group_by: ["day"] } } : { body: { results: [] } });
    renderPage(<Overview />);
    expect(await screen.findByText("Nothing is deployed")).toBeInTheDocument();
    expect(screen.getByText("No node has joined yet")).toBeInTheDocument();
  });
});
