// SPDX-License-Identifier: Apache-2.0
/** Component tests render against a fake server at the HTTP boundary (fetch), nothing else. */
import type { ReactElement } from "react";
import { render } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter } from "react-router-dom";
import { vi } from "vitest";

export interface Call { url: string; method: string; headers: Record<string, string>; body: unknown }

type Handler = (call: Call) => { status?: number; body?: unknown; stream?: string[] };

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
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status ?? 200, headers: { "Content-Type": "application/json" },
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
