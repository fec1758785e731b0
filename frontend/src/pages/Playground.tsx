// SPDX-License-Identifier: Apache-2.0
import { useState, type FormEvent } from "react";
import { flushSync } from "react-dom";
import { useQuery } from "@tanstack/react-query";
import { useSearchParams } from "react-router-dom";
import { ApiError, api, items } from "../api/client";
import { streamChat, type ChatMessage, type ChatParams, type ChatResult } from "../api/chat";
import { curlSnippet, pythonSnippet } from "../api/snippets";
import type { ApiKey, Model } from "../api/types";
import { Busy, CopyButton, EmptyState, ErrorMessage, Section } from "../components/ui";
import { useSession } from "../session";

const DAY_MS = 24 * 3600 * 1000;

function keyStorage(org: string): string {
  return `potluck.playground-key.${org}`;
}

/** The gateway takes API keys only: a short-lived inference key, kept for this tab. */
function usePlaygroundKey(org: string) {
  const [key, setKey] = useState<string | null>(() => sessionStorage.getItem(keyStorage(org)));
  const save = (value: string | null) => {
    if (value) sessionStorage.setItem(keyStorage(org), value);
    else sessionStorage.removeItem(keyStorage(org));
    setKey(value);
  };
  const create = async () => {
    const made = await api<ApiKey>("/api/keys", { method: "POST", body: {
      name: "console playground", scopes: ["inference"],
      expires_at: new Date(Date.now() + DAY_MS).toISOString() } });
    save(made.key ?? null);
  };
  return { key, save, create };
}

interface Turn { role: "user" | "assistant"; content: string; result?: ChatResult }

export function Playground() {
  const { org } = useSession();
  const [params] = useSearchParams();
  const slug = org?.slug ?? "none";
  const { key, save, create } = usePlaygroundKey(slug);
  const [pasted, setPasted] = useState("");
  const [keyError, setKeyError] = useState<unknown>(null);
  const models = useQuery({ queryKey: ["models"],
    queryFn: async () => items(await api<{ results: Model[] }>("/api/models")) });
  const [model, setModel] = useState(params.get("model") ?? "");
  const [temperature, setTemperature] = useState(0.7);
  const [maxTokens, setMaxTokens] = useState(64);
  const [prompt, setPrompt] = useState("");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [streaming, setStreaming] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const chosen = model || models.data?.[0]?.name || "";
  const draft: ChatMessage[] = [...turns.map(({ role, content }) => ({ role, content })),
    ...(prompt ? [{ role: "user" as const, content: prompt }] : [])];
  const request: ChatParams = { model: chosen, messages: draft.length ? draft
    : [{ role: "user", content: "Hello!" }], temperature, max_tokens: maxTokens };

  async function send(event: FormEvent) {
    event.preventDefault();
    if (!key || !prompt.trim()) return;
    const asked: Turn[] = [...turns, { role: "user", content: prompt }];
    setTurns(asked);
    setPrompt("");
    setStreaming("");
    setError(null);
    setBusy(true);
    try {
      const result = await streamChat(key, {
        ...request, messages: asked.map(({ role, content }) => ({ role, content })),
      // Each piece is on screen before the next is read, not batched into one render.
      }, (piece) => flushSync(() => setStreaming((text) => text + piece)));
      setTurns([...asked, { role: "assistant", content: result.text, result }]);
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 401) {
        save(null);
        setError(new Error("The Playground's key was refused (expired or revoked): "
          + "create a new one below."));
      } else {
        setError(caught);
      }
    } finally {
      setStreaming("");
      setBusy(false);
    }
  }

  if (!key) {
    return (
      <>
        <h1>Playground</h1>
        <Section title="An API key for the Playground">
          <p>The Playground calls the same gateway as your code, with an API key. Create a
            key that can only run inference and expires in a day, or paste one.</p>
          <button type="button" onClick={async () => {
            setKeyError(null);
            try { await create(); } catch (caught) { setKeyError(caught); }
          }}>Create a playground key</button>
          <form className="inline-form" onSubmit={(e) => { e.preventDefault(); save(pasted.trim()); }}>
            <label htmlFor="paste-key">Or paste a key</label>
            <input id="paste-key" type="password" value={pasted} autoComplete="off"
              onChange={(e) => setPasted(e.target.value)} placeholder="pot_…" />
            <button type="submit" disabled={!pasted.trim()}>Use this key</button>
          </form>
          <ErrorMessage error={keyError ?? error} />
        </Section>
      </>
    );
  }

  return (
    <>
      <h1>Playground</h1>
      <div className="playground">
        <Section title="Chat" actions={<button type="button" onClick={() => setTurns([])}>Clear</button>}>
          {models.data && !models.data.length ? (
            <EmptyState title="No model to chat with">Register and deploy one on the Models page.</EmptyState>
          ) : null}
          <div className="transcript" aria-live="polite" data-testid="transcript">
            {turns.map((turn, i) => (
              <div key={i} className={`turn ${turn.role}`}>
                <span className="who">{turn.role === "user" ? "You" : chosen}</span>
                <p data-testid={turn.role === "assistant" ? "answer" : undefined}
                  data-pieces={turn.result?.pieces}>{turn.content}</p>
                {turn.result ? (
                  <p className="muted" data-testid="answer-stats">
                    {turn.result.usage ? `${turn.result.usage.prompt_tokens} prompt + ${turn.result.usage.completion_tokens} completion tokens · ` : ""}
                    {turn.result.firstTokenMs !== null ? `first token ${Math.round(turn.result.firstTokenMs)} ms · ` : ""}
                    {Math.round(turn.result.totalMs)} ms in all</p>
                ) : null}
              </div>
            ))}
            {busy ? (
              <div className="turn assistant"><span className="who">{chosen}</span>
                <p data-testid="streaming">{streaming}</p><Busy label="Generating" /></div>
            ) : null}
          </div>
          <ErrorMessage error={error} />
          <form onSubmit={send} aria-label="Send a message">
            <label htmlFor="prompt">Message</label>
            <textarea id="prompt" rows={3} value={prompt} onChange={(e) => setPrompt(e.target.value)}
              onKeyDown={(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e); }} />
            <button type="submit" disabled={busy || !prompt.trim() || !chosen}>Send</button>
          </form>
        </Section>
        <Section title="Settings">
          <label htmlFor="pg-model">Model or adapter</label>
          <select id="pg-model" value={chosen} onChange={(e) => setModel(e.target.value)}>
            {model && !models.data?.some((m) => m.name === model) ? <option value={model}>{model}</option> : null}
            {models.data?.map((m) => <option key={m.id} value={m.name}>{m.name}</option>)}
          </select>
          <label htmlFor="pg-temp">Temperature: {temperature}</label>
          <input id="pg-temp" type="range" min={0} max={2} step={0.1} value={temperature}
            onChange={(e) => setTemperature(Number(e.target.value))} />
          <label htmlFor="pg-max">Max tokens</label>
          <input id="pg-max" type="number" min={1} max={4096} value={maxTokens}
            onChange={(e) => setMaxTokens(Number(e.target.value))} />
          <button type="button" onClick={() => save(null)}>Forget the key</button>
        </Section>
      </div>
      <Section title="The same request in code">
        <h3>curl</h3>
        <pre data-testid="curl-snippet">{curlSnippet(window.location.origin, request)}</pre>
        <CopyButton text={curlSnippet(window.location.origin, request)} label="Copy curl" />
        <h3>Python (OpenAI SDK)</h3>
        <pre>{pythonSnippet(window.location.origin, request)}</pre>
        <CopyButton text={pythonSnippet(window.location.origin, request)} label="Copy Python" />
      </Section>
    </>
  );
}
