// SPDX-License-Identifier: Apache-2.0
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { flushSync } from "react-dom";
import { useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router-dom";
import { ApiError, api } from "../api/client";
import { listModels, streamChat, type ChatMessage, type ChatParams, type ChatResult }
  from "../api/chat";
import { curlSnippet, pythonSnippet } from "../api/snippets";
import type { ApiKey } from "../api/types";
import { keyStorage, readKey, type StoredKey } from "../api/playgroundKey";
import { Busy, CopyButton, EmptyState, FieldError, Loading, Section, modelLabel }
  from "../components/ui";
import { useSession } from "../session";

export const MAX_TOKENS_LIMIT = 4096;

/**
 * The gateway takes API keys only. The Playground's key is the person's one "console
 * playground" key (inference only, a day long), kept in this browser for its tabs and
 * reloads; asking for a new one replaces the old one on the server (POST
 * /api/keys/playground), so a person holds one, not one per browser session.
 */
function usePlaygroundKey(user: number | string, org: string) {
  const name = keyStorage(user, org);
  const [key, setKey] = useState<StoredKey | null>(() => readKey(name));
  const save = (value: StoredKey | null) => {
    if (value) localStorage.setItem(name, JSON.stringify(value));
    else localStorage.removeItem(name);
    setKey(value);
  };
  // Another tab of this browser replaced the key: take the new one.
  useEffect(() => {
    const follow = (e: StorageEvent) => { if (e.key === name) setKey(readKey(name)); };
    window.addEventListener("storage", follow);
    return () => window.removeEventListener("storage", follow);
  }, [name]);
  const issue = async (): Promise<StoredKey> => {
    const made = await api<ApiKey>("/api/keys/playground", { method: "POST" });
    const stored = { secret: made.key ?? "", issued: true, expiresAt: made.expires_at };
    save(stored);
    return stored;
  };
  return { key, save, issue };
}

/** What went wrong, said so that the person knows what to do next. */
export function ChatError({ error }: { error: unknown }) {
  if (!error) return null;
  let body: ReactNode = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.code === "model_not_deployed") {
    body = <>{error.message} <Link to="/models">Deploy it on the Models page</Link>.</>;
  }
  return (
    <div role="alert" className="error-box" data-testid="chat-error">
      <p className="error">{body}</p>
      <p className="muted">Your message was not added to the conversation: change it and send
        again.</p>
    </div>
  );
}

/** "" → the model's own limit; a whole number 1…4096; anything else is refused here. */
export function parseMaxTokens(text: string): { value?: number; error?: string } {
  const trimmed = text.trim();
  if (!trimmed) return {};
  const n = Number(trimmed);
  if (!Number.isInteger(n) || n < 1 || n > MAX_TOKENS_LIMIT) {
    return { error: `A whole number from 1 to ${MAX_TOKENS_LIMIT}, or empty for the model's limit.` };
  }
  return { value: n };
}

interface Turn { role: "user" | "assistant"; content: string; model?: string; result?: ChatResult }

function KeyChooser({ issue, save, error, setError }: {
  issue: () => Promise<unknown>; save: (key: StoredKey) => void;
  error: unknown; setError: (e: unknown) => void;
}) {
  const [pasted, setPasted] = useState("");
  return (
    <Section title="An API key for the Playground">
      <p>The Playground calls the same gateway as your code, with an API key. Create your
        Playground key (it can only run inference, expires in a day, and replaces your
        earlier one), or paste a key of your own.</p>
      <button type="button" onClick={async () => {
        setError(null);
        try { await issue(); } catch (caught) { setError(caught); }
      }}>Create a playground key</button>
      <form className="inline-form" onSubmit={(e) => {
        e.preventDefault();
        save({ secret: pasted.trim(), issued: false, expiresAt: null });
      }}>
        <div><label htmlFor="paste-key">Or paste a key</label>
          <input id="paste-key" type="password" value={pasted} autoComplete="off"
            onChange={(e) => setPasted(e.target.value)} placeholder="pot_…" /></div>
        <button type="submit" className="secondary" disabled={!pasted.trim()}>Use this key</button>
      </form>
      {error ? <p role="alert" className="error">{error instanceof Error ? error.message : String(error)}</p> : null}
    </Section>
  );
}

export function Playground() {
  const { org, session } = useSession();
  const [params] = useSearchParams();
  const slug = org?.slug ?? "none";
  const { key, save, issue } = usePlaygroundKey(session.user?.id ?? "me", slug);
  const [keyError, setKeyError] = useState<unknown>(null);
  const models = useQuery({ queryKey: ["v1-models", key?.secret], enabled: Boolean(key),
    refetchInterval: 15_000, retry: false,
    queryFn: ({ signal }) => listModels(key!.secret, signal) });
  const [model, setModel] = useState(params.get("model") ?? "");
  const [temperature, setTemperature] = useState(0.7);
  const [maxTokens, setMaxTokens] = useState("64");
  const [prompt, setPrompt] = useState("");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [streaming, setStreaming] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const transcript = useRef<HTMLDivElement>(null);
  const listed = models.data ?? [];
  const chosen = model || listed[0] || "";
  const limit = parseMaxTokens(maxTokens);
  const draft: ChatMessage[] = [...turns.map(({ role, content }) => ({ role, content })),
    ...(prompt ? [{ role: "user" as const, content: prompt }] : [])];
  const request: ChatParams = { model: chosen, messages: draft.length ? draft
    : [{ role: "user", content: "Hello!" }], temperature, max_tokens: limit.value };

  // The newest answer stays in view as it streams and after it lands.
  useEffect(() => {
    const box = transcript.current;
    if (!box) return;
    box.scrollTop = box.scrollHeight;
    box.lastElementChild?.scrollIntoView?.({ block: "nearest" });
  }, [turns, streaming, busy]);

  // The gateway refused the key (expired or revoked): the key is forgotten; the
  // Playground's own key is replaced at once and the message sent again.
  useEffect(() => {
    if (models.error instanceof ApiError && models.error.status === 401) save(null);
  }, [models.error]); // eslint-disable-line react-hooks/exhaustive-deps

  async function send(event?: FormEvent) {
    event?.preventDefault();
    if (!key || !prompt.trim() || busy || limit.error || !chosen) return;
    const before = turns;
    const text = prompt;
    const asked: Turn[] = [...before, { role: "user", content: text }];
    setTurns(asked);
    setPrompt("");
    setStreaming("");
    setError(null);
    setBusy(true);
    const attempt = (secret: string) => streamChat(secret, {
      ...request, messages: asked.map(({ role, content }) => ({ role, content })),
    // Each piece is on screen before the next is read, not batched into one render.
    }, (piece) => flushSync(() => setStreaming((t) => t + piece)));
    try {
      let result: ChatResult;
      try {
        result = await attempt(key.secret);
      } catch (caught) {
        if (!(caught instanceof ApiError && caught.status === 401)) throw caught;
        if (!key.issued) {
          save(null);
          throw new Error("The key was refused (expired or revoked): create a Playground "
            + "key or paste another.");
        }
        setStreaming("");
        result = await attempt((await issue()).secret);
      }
      setTurns([...asked, { role: "assistant", content: result.text, model: chosen, result }]);
    } catch (caught) {
      // A refused message leaves the conversation as it was, so the next one can succeed;
      // its text goes back into the box to be changed.
      setTurns(before);
      setPrompt(text);
      setError(caught);
    } finally {
      setStreaming("");
      setBusy(false);
    }
  }

  if (!key) {
    return (
      <>
        <h1>Playground</h1>
        <KeyChooser issue={issue} save={save} error={keyError} setError={setKeyError} />
      </>
    );
  }

  // A model asked for by the address (e.g. "Try it in the Playground") stays chosen while
  // the list loads; once loaded, it says whether the gateway lists it.
  const notListed = Boolean(model) && !listed.includes(model);
  return (
    <>
      <h1>Playground</h1>
      <div className="playground">
        <Section title="Chat" actions={
          <button type="button" className="secondary" onClick={() => { setTurns([]); setError(null); }}
            disabled={busy || !turns.length}>Clear</button>}>
          {models.isPending ? <Loading label="deployed models" /> : null}
          {models.data && !listed.length ? (
            <EmptyState title="No model is deployed">
              Deploy one on the <Link to="/models">Models page</Link>; it appears here once
              the gateway can serve it.</EmptyState>
          ) : null}
          {models.isError && !(models.error instanceof ApiError && models.error.status === 401)
            ? <p role="alert" className="error">Cannot list the models: {models.error.message}</p>
            : null}
          <div className="transcript" aria-live="polite" data-testid="transcript" ref={transcript}>
            {turns.map((turn, i) => (
              <div key={i} className={`turn ${turn.role}`}>
                <span className="who">{turn.role === "user" ? "You" : modelLabel(turn.model ?? chosen)}</span>
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
              <div className="turn assistant"><span className="who">{modelLabel(chosen)}</span>
                <p data-testid="streaming">{streaming}</p><Busy label="Generating" /></div>
            ) : null}
          </div>
          <ChatError error={error} />
          <form onSubmit={send} aria-label="Send a message">
            <label htmlFor="prompt">Message</label>
            <textarea id="prompt" rows={3} value={prompt} aria-describedby="prompt-hint"
              onChange={(e) => setPrompt(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
                  e.preventDefault();
                  void send();
                }
              }} />
            <div className="send-row">
              <span id="prompt-hint" className="hint">Enter sends · Shift+Enter adds a new line</span>
              <button type="submit" disabled={busy || !prompt.trim() || !chosen || Boolean(limit.error)}>
                Send</button>
            </div>
          </form>
        </Section>
        <Section title="Settings">
          <label htmlFor="pg-model">Model or adapter</label>
          <select id="pg-model" value={chosen} onChange={(e) => setModel(e.target.value)}
            title={chosen} className="wide">
            {notListed ? <option value={model}>{modelLabel(model)}{models.data ? " (not deployed)" : ""}</option> : null}
            {listed.map((m) => <option key={m} value={m} title={m}>{modelLabel(m)}</option>)}
          </select>
          {chosen !== modelLabel(chosen) ? <p className="muted small" data-testid="model-name">
            <code>{chosen}</code></p> : null}
          <label htmlFor="pg-temp">Temperature: {temperature}</label>
          <input id="pg-temp" type="range" min={0} max={2} step={0.1} value={temperature}
            onChange={(e) => setTemperature(Number(e.target.value))} />
          <label htmlFor="pg-max">Max tokens</label>
          <input id="pg-max" type="number" min={1} max={MAX_TOKENS_LIMIT} value={maxTokens}
            placeholder="model's limit" aria-invalid={Boolean(limit.error)}
            aria-describedby={limit.error ? "pg-max-error" : undefined}
            onChange={(e) => setMaxTokens(e.target.value)} />
          <FieldError id="pg-max-error" message={limit.error} />
          <p>
            <button type="button" className="secondary" onClick={() => save(null)}>
              Forget the key</button>
          </p>
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
