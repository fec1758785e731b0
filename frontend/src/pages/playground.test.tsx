// SPDX-License-Identifier: Apache-2.0
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { SESSION, fakeServer, renderApp, type Call } from "../test-utils";
import { parseMaxTokens } from "./Playground";

const KEY = "potluck.playground-key.7.acme";
const TUNED_A = "ft:potluck-demo:acme:owl:abc123";
const TUNED_B = "ft:potluck-demo:acme:owl:def456";

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
});
afterEach(() => vi.unstubAllGlobals());

function chunk(content: string): string {
  return `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`;
}

const ANSWER = [chunk("Hi "), chunk("there"), `data: ${JSON.stringify({ choices: [],
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } })}\n\n`, "data: [DONE]\n\n"];

/** The console's server: a session, the gateway's model list, and `chat` for each send. */
function server(chat: (call: Call) => { status?: number; body?: unknown; stream?: string[] },
  models: string[] = ["potluck-demo", TUNED_A, TUNED_B]) {
  return fakeServer((call) => {
    if (call.url === "/api/session") return { body: SESSION };
    if (call.url === "/api/keys/playground") {
      return { status: 201, body: { id: "k-new", name: "console playground", key: "pot_fresh",
        expires_at: new Date(Date.now() + 86400_000).toISOString() } };
    }
    if (call.url === "/v1/models") return { body: { object: "list", data: models.map((id) => ({ id })) } };
    if (call.url === "/v1/chat/completions") return chat(call);
    return { body: { results: [] } };
  });
}

function haveKey(secret = "pot_stored") {
  localStorage.setItem(KEY, JSON.stringify({ secret, issued: true,
    expiresAt: new Date(Date.now() + 3600_000).toISOString() }));
}

describe("Playground", () => {
  it("drops a refused message from the conversation, so the next one is answered", async () => {
    haveKey();
    const calls = server((call) => {
      const messages = (call.body as { messages: { content: string }[] }).messages;
      if (messages.some((m) => m.content.startsWith("long"))) {
        return { status: 400, body: { error: { message: "This model's maximum context length "
          + "is 512 tokens. However, you requested 900 tokens.", type: "invalid_request_error",
        param: "messages", code: "context_length_exceeded" } } };
      }
      return { stream: ANSWER };
    });
    renderApp("/playground");
    const box = await screen.findByLabelText("Message");
    await userEvent.type(box, "long long long{Enter}");
    expect(await screen.findByTestId("chat-error")).toHaveTextContent("maximum context length");
    expect(screen.getByTestId("chat-error")).toHaveTextContent("not added to the conversation");
    expect(within(screen.getByTestId("transcript")).queryByText("long long long")).toBeNull();
    expect(box).toHaveValue("long long long");  // back in the box, to be changed

    await userEvent.clear(box);
    await userEvent.type(box, "hello again{Enter}");
    expect(await screen.findByTestId("answer")).toHaveTextContent("Hi there");
    expect(screen.queryByTestId("chat-error")).toBeNull();
    const sent = calls.filter((c) => c.url === "/v1/chat/completions");
    expect((sent[1].body as { messages: unknown[] }).messages).toEqual(
      [{ role: "user", content: "hello again" }]);
    expect(sent[1].headers.Authorization).toBe("Bearer pot_stored");
  });

  it("sends with Enter, adds a line with Shift+Enter, and says so", async () => {
    haveKey();
    const calls = server(() => ({ stream: ANSWER }));
    renderApp("/playground");
    const box = await screen.findByLabelText("Message");
    expect(screen.getByText(/Enter sends · Shift\+Enter adds a new line/)).toBeInTheDocument();
    await userEvent.type(box, "first line{Shift>}{Enter}{/Shift}second");
    expect(box).toHaveValue("first line\nsecond");
    expect(calls.some((c) => c.url === "/v1/chat/completions")).toBe(false);
    await userEvent.type(box, "{Enter}");
    expect(await screen.findByTestId("answer")).toBeInTheDocument();
    const sent = calls.find((c) => c.url === "/v1/chat/completions")!;
    expect((sent.body as { messages: { content: string }[] }).messages[0].content)
      .toBe("first line\nsecond");
  });

  it("leaves max_tokens out when the field is empty, and refuses nonsense there", async () => {
    haveKey();
    const calls = server(() => ({ stream: ANSWER }));
    renderApp("/playground");
    const max = await screen.findByLabelText("Max tokens");
    await userEvent.clear(max);
    expect(screen.getByTestId("curl-snippet").textContent).not.toContain("max_tokens");
    await userEvent.type(screen.getByLabelText("Message"), "hi{Enter}");
    await screen.findByTestId("answer");
    const sent = calls.find((c) => c.url === "/v1/chat/completions")!;
    expect(sent.body).not.toHaveProperty("max_tokens");

    await userEvent.type(max, "0");
    expect(screen.getByText(/A whole number from 1 to 4096/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Send" })).toBeDisabled();
    expect(parseMaxTokens("48")).toEqual({ value: 48 });
    expect(parseMaxTokens("2.5").error).toBeDefined();
  });

  it("offers only the models the gateway serves, tuned ones told apart", async () => {
    haveKey();
    const calls = server(() => ({ stream: ANSWER }));
    renderApp("/playground");
    const select = await screen.findByLabelText("Model or adapter");
    await waitFor(() => expect(within(select).getAllByRole("option")).toHaveLength(3));
    const labels = within(select).getAllByRole("option").map((o) => o.textContent);
    expect(labels).toEqual(["potluck-demo", "owl · abc123 (tuned potluck-demo)",
      "owl · def456 (tuned potluck-demo)"]);
    const listing = calls.find((c) => c.url === "/v1/models")!;
    expect(listing.headers.Authorization).toBe("Bearer pot_stored");
  });

  it("says a model is not deployed and where to deploy it", async () => {
    haveKey();
    server(() => ({ status: 404, body: { error: { message: "The model 'team-demo' exists but "
      + "is not deployed.", type: "invalid_request_error", param: "model",
    code: "model_not_deployed" } } }));
    renderApp("/playground?model=team-demo");
    const select = await screen.findByLabelText("Model or adapter");
    await waitFor(() => expect(select).toHaveValue("team-demo"));
    expect(within(select).getByRole("option", { name: "team-demo (not deployed)" })).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Message"), "hi{Enter}");
    const error = await screen.findByTestId("chat-error");
    expect(error).toHaveTextContent("exists but is not deployed");
    expect(within(error).getByRole("link", { name: /Deploy it on the Models page/ }))
      .toHaveAttribute("href", "/models");
  });

  it("makes one key and keeps it for the next visit", async () => {
    const calls = server(() => ({ stream: ANSWER }));
    const first = renderApp("/playground");
    await userEvent.click(await screen.findByRole("button", { name: "Create a playground key" }));
    expect(await screen.findByLabelText("Message")).toBeInTheDocument();
    expect(JSON.parse(localStorage.getItem(KEY)!).secret).toBe("pot_fresh");
    first.unmount();

    renderApp("/playground");
    expect(await screen.findByLabelText("Message")).toBeInTheDocument();
    expect(calls.filter((c) => c.url === "/api/keys/playground")).toHaveLength(1);
  });

  it("replaces a refused Playground key and sends the message again", async () => {
    haveKey("pot_expired");
    const calls = server((call) => (call.headers.Authorization === "Bearer pot_expired"
      ? { status: 401, body: { error: { message: "Incorrect, expired or revoked API key.",
        type: "invalid_request_error", param: null, code: "invalid_api_key" } } }
      : { stream: ANSWER }), ["potluck-demo"]);
    renderApp("/playground");
    await userEvent.type(await screen.findByLabelText("Message"), "hi{Enter}");
    expect(await screen.findByTestId("answer")).toHaveTextContent("Hi there");
    const sent = calls.filter((c) => c.url === "/v1/chat/completions");
    expect(sent.map((c) => c.headers.Authorization)).toEqual(["Bearer pot_expired", "Bearer pot_fresh"]);
    expect(JSON.parse(localStorage.getItem(KEY)!).secret).toBe("pot_fresh");
  });

  it("shows that the model list is loading, and when nothing is deployed", async () => {
    haveKey();
    fakeServer((call) => (call.url === "/api/session" ? { body: SESSION }
      : call.url === "/v1/models" ? { never: true } : { body: {} }));
    const { unmount } = renderApp("/playground");
    expect(await screen.findByText(/Loading deployed models/)).toBeInTheDocument();
    unmount();
    server(() => ({ stream: ANSWER }), []);
    renderApp("/playground");
    expect(await screen.findByText("No model is deployed")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Send" })).toBeDisabled();
  });

  it("forgets the key when the person signs out", async () => {
    haveKey();
    let signedIn = true;
    fakeServer((call) => {
      if (call.url === "/api/session" && call.method === "DELETE") {
        signedIn = false;
        return { status: 204 };
      }
      if (call.url === "/api/session") {
        return { body: signedIn ? SESSION : { ...SESSION, authenticated: false, user: null,
          organizations: [] } };
      }
      if (call.url.startsWith("/api/session/providers")) return { body: { providers: [] } };
      if (call.url === "/v1/models") return { body: { data: [{ id: "potluck-demo" }] } };
      return { body: {} };
    });
    renderApp("/playground");
    await screen.findByLabelText("Message");
    await userEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByRole("heading", { name: "Sign in to Potluck" })).toBeInTheDocument();
    expect(localStorage.getItem(KEY)).toBeNull();
  });
});
