// SPDX-License-Identifier: Apache-2.0
/** Chat with the gateway as any client does: an API key, SSE streaming, usage at the end. */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { ApiError, errorFromBody } from "./client";

export interface ChatMessage { role: "system" | "user" | "assistant"; content: string }

export interface ChatParams {
  model: string;
  messages: ChatMessage[];
  temperature: number;
  /** Absent: the model's own limit (the field is left out, never sent as 0). */
  max_tokens?: number;
}

export interface Usage { prompt_tokens: number; completion_tokens: number; total_tokens: number }

export interface ChatResult {
  text: string;
  /** How many streamed events carried text: more than one when the answer streamed. */
  pieces: number;
  usage: Usage | null;
  /** Milliseconds to the first token, and to the end of the answer. */
  firstTokenMs: number | null;
  totalMs: number;
}

interface Chunk {
  choices?: { delta?: { content?: string | null } }[];
  usage?: Usage | null;
  error?: { message?: string };
}

export function chatBody(params: ChatParams): Record<string, unknown> {
  return {
    model: params.model,
    messages: params.messages,
    temperature: params.temperature,
    ...(params.max_tokens === undefined ? {} : { max_tokens: params.max_tokens }),
    stream: true,
    stream_options: { include_usage: true },
  };
}

async function refusal(response: Response): Promise<never> {
  let parsed: unknown = null;
  try { parsed = await response.json(); } catch { parsed = null; }
  throw errorFromBody(response.status, parsed);
}

/** The models the gateway can serve to this key now (`GET /v1/models`): deployed ones. */
export async function listModels(apiKey: string, signal?: AbortSignal): Promise<string[]> {
  let response: Response;
  try {
    response = await fetch("/v1/models", { headers: { Authorization: `Bearer ${apiKey}` }, signal });
  } catch {
    throw new ApiError(0, "Cannot reach the Potluck server: check that it is running.");
  }
  if (!response.ok) return refusal(response);
  const body = await response.json() as { data?: { id: string }[] };
  return (body.data ?? []).map((m) => m.id);
}

/** Streams one answer; `onToken` sees each piece of text as it arrives. */
export async function streamChat(
  apiKey: string, params: ChatParams, onToken: (text: string) => void,
  signal?: AbortSignal,
): Promise<ChatResult> {
  const began = performance.now();
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(chatBody(params)),
    signal,
  });
  if (!response.ok || !response.body) return refusal(response);
  const result: ChatResult = { text: "", pieces: 0, usage: null, firstTokenMs: null, totalMs: 0 };
  let failure: string | null = null;
  const parser = createParser({
    onEvent(event: EventSourceMessage) {
      if (event.data === "[DONE]") return;
      const chunk = JSON.parse(event.data) as Chunk;
      if (chunk.error) failure = chunk.error.message ?? "the model failed mid-answer";
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        if (result.firstTokenMs === null) result.firstTokenMs = performance.now() - began;
        result.text += piece;
        result.pieces += 1;
        onToken(piece);
      }
      if (chunk.usage) result.usage = chunk.usage;
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.feed(value);
  }
  if (failure) throw new Error(failure);
  result.totalMs = performance.now() - began;
  return result;
}
