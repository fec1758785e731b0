// SPDX-License-Identifier: Apache-2.0
import { afterEach, expect, it, vi } from "vitest";
import { streamChat } from "./chat";
import { curlSnippet, pythonSnippet } from "./snippets";
import { fakeServer } from "../test-utils";

afterEach(() => vi.unstubAllGlobals());

const params = { model: "potluck-demo", messages: [{ role: "user" as const, content: "It's me" }],
  temperature: 0.2, max_tokens: 16 };

function chunk(content: string): string {
  return `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`;
}

it("streams tokens as they arrive, split anywhere, and keeps the usage", async () => {
  const whole = chunk("Hel") + chunk("lo") + `data: ${JSON.stringify({ choices: [],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } })}\n\n` + "data: [DONE]\n\n";
  const calls = fakeServer(() => ({ stream: [whole.slice(0, 17), whole.slice(17, 60), whole.slice(60)] }));
  const seen: string[] = [];
  const result = await streamChat("pot_secret", params, (t) => seen.push(t));
  expect(seen).toEqual(["Hel", "lo"]);
  expect(result.text).toBe("Hello");
  expect(result.pieces).toBe(2);
  expect(result.usage?.total_tokens).toBe(7);
  expect(result.firstTokenMs).not.toBeNull();
  expect(calls[0].headers.Authorization).toBe("Bearer pot_secret");
  expect(calls[0].body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
});

it("reports the gateway's refusal", async () => {
  fakeServer(() => ({ status: 404, body: { error: { message: "The model `x` does not exist",
    param: "model" } } }));
  await expect(streamChat("k", params, () => undefined)).rejects.toThrow(/does not exist/);
});

it("writes the same request for curl and the Python SDK", () => {
  const curl = curlSnippet("http://localhost:8000", params);
  expect(curl).toContain("curl -N http://localhost:8000/v1/chat/completions");
  expect(curl).toContain(`It'"'"'s me`);
  expect(curl).toContain('"max_tokens": 16');
  expect(curl).not.toContain("pot_");
  const python = pythonSnippet("http://localhost:8000", params);
  expect(python).toContain('base_url="http://localhost:8000/v1"');
  expect(python).toContain('model="potluck-demo"');
  expect(python).toContain('{"role": "user", "content": "It\'s me"}');
  expect(python).toContain("temperature=0.2");
});
