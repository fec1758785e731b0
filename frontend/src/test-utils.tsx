// SPDX-License-Identifier: Apache-2.0
/** Component tests render against a fake server at the HTTP boundary (fetch), nothing else. */
import type { ReactElement } from "react";
import { render } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter } from "react-router-dom";
import { vi } from "vitest";
import { App } from "./App";

export interface Call { url: string; method: string; headers: Record<string, string>; body: unknown }

/** `never`: the server does not answer (yet): the page shows its loading state. `text`: a
 * non-JSON body (e.g. a proxy's HTML error page). */
export type Answer = { status?: number; body?: unknown; stream?: string[]; never?: boolean; text?: string;
  headers?: Record<string, string> };
type Handler = (call: Call) => Answer;

/** Replaces fetch with `handler`; returns the calls made. */
export function fakeServer(handler: Handler): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal("fetch", async (input: string, init: RequestInit = {}) => {
    const raw = init.body;
    const call: Call = {
      url: String(input), method: init.method ?? "GET",
      headers: (init.headers ?? {}) as Record<string, string>,
      body: typeof raw === "string" ? JSON.parse(raw) : raw ?? null,
    };
    calls.push(call);
    const answer = handler(call);
    if (answer.never) return new Promise<Response>(() => undefined);
    if (answer.stream) {
      const encoder = new TextEncoder();
      const parts = answer.stream;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const part of parts) controller.enqueue(encoder.encode(part));
          controller.close();
        },
      });
      return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    }
    if (answer.text !== undefined) {
      return new Response(answer.text, { status: answer.status ?? 200,
        headers: { "Content-Type": "text/html" } });
    }
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { "Content-Type": "application/json", ...answer.headers },
    });
  });
  return calls;
}

export function renderPage(element: ReactElement, route = "/") {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[route]}>{element}</MemoryRouter>
    </QueryClientProvider>,
  );
}

export const SESSION = {
  authenticated: true,
  user: { id: 7, email: "dev@acme.test", username: "dev", is_superuser: false },
  organizations: [{ id: "o1", slug: "acme", name: "Acme", role: "owner" }],
  logout_url: "/api/session",
};

/** The whole console (session, navigation, routes) at `route`. */
export function renderApp(route = "/") {
  return renderPage(<App />, route);
}
