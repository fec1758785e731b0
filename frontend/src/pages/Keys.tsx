// SPDX-License-Identifier: Apache-2.0
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { ApiKey } from "../api/types";
import { Busy, CopyButton, EmptyState, ErrorMessage, FieldError, Section, ago, fieldError }
  from "../components/ui";

export const SCOPES = ["inference", "read", "write", "admin"];

export function NewKeyForm({ onCreated }: { onCreated: (key: ApiKey) => void }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["inference", "read", "write"]);
  const [expires, setExpires] = useState("");
  const create = useMutation({
    mutationFn: () => api<ApiKey>("/api/keys", { method: "POST", body: {
      name, scopes, ...(expires ? { expires_at: new Date(`${expires}T23:59:59Z`).toISOString() } : {}),
    } }),
    onSuccess: (key) => { setName(""); onCreated(key); },
  });
  const submit = (e: FormEvent) => { e.preventDefault(); create.mutate(); };
  const err = create.error;
  return (
    <form className="inline-form" aria-label="Create an API key" onSubmit={submit}>
      <div><label htmlFor="key-name">Name</label>
        <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} required
          placeholder="e.g. backend service" />
        <FieldError id="key-name-error" message={fieldError(err, "name")} /></div>
      <fieldset><legend>Scopes</legend>
        {SCOPES.map((s) => (
          <label key={s} className="check"><input type="checkbox" checked={scopes.includes(s)}
            onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))} />
            {s}</label>
        ))}
        <FieldError id="key-scopes-error" message={fieldError(err, "scopes")} />
      </fieldset>
      <div><label htmlFor="key-expires">Expires (optional)</label>
        <input id="key-expires" type="date" value={expires} onChange={(e) => setExpires(e.target.value)} />
        <FieldError id="key-expires-error" message={fieldError(err, "expires_at")} /></div>
      <button type="submit" disabled={create.isPending}>{create.isPending ? <Busy label="Creating" /> : "Create key"}</button>
      {err && !["name", "scopes", "expires_at"].some((f) => fieldError(err, f)) ? <ErrorMessage error={err} /> : null}
    </form>
  );
}

export function SecretOnce({ secret, onDone }: { secret: string; onDone: () => void }) {
  return (
    <div className="secret" role="status">
      <p><strong>Copy this key now: it is shown only once.</strong></p>
      <code data-testid="new-secret">{secret}</code> <CopyButton text={secret} />
      <button type="button" onClick={onDone}>I have copied it</button>
    </div>
  );
}

export function Keys() {
  const client = useQueryClient();
  const [secret, setSecret] = useState<string | null>(null);
  const keys = useQuery({ queryKey: ["keys"],
    queryFn: async () => items(await api<{ results: ApiKey[] }>("/api/keys")) });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/api/keys/${id}/revoke`, { method: "POST" }),
    onSettled: () => client.invalidateQueries({ queryKey: ["keys"] }),
  });
  return (
    <>
      <h1>API keys</h1>
      <Section title="New key">
        <NewKeyForm onCreated={async (key) => {
          setSecret(key.key ?? null);
          await client.invalidateQueries({ queryKey: ["keys"] });
        }} />
        {secret ? <SecretOnce secret={secret} onDone={() => setSecret(null)} /> : null}
      </Section>
      <Section title="Keys">
        <ErrorMessage error={keys.error ?? revoke.error} />
        {keys.data && !keys.data.length ? (
          <EmptyState title="No API key yet">Create one above to call the API from your code.</EmptyState>
        ) : (
          <table>
            <thead><tr><th>Name</th><th>Prefix</th><th>Scopes</th><th>Created by</th><th>Expires</th>
              <th>Last used</th><th>State</th><th></th></tr></thead>
            <tbody>{keys.data?.map((k) => (
              <tr key={k.id}><td>{k.name}</td><td><code>{k.prefix}</code></td><td>{k.scopes.join(", ")}</td>
                <td>{k.created_by ?? "—"}</td><td>{k.expires_at ? k.expires_at.slice(0, 10) : "never"}</td>
                <td>{ago(k.last_used_at)}</td><td>{k.is_active ? "active" : k.revoked_at ? "revoked" : "expired"}</td>
                <td>{k.is_active ? <button type="button" onClick={() => {
                  if (window.confirm(`Revoke ${k.name}? Programs using it stop working.`)) revoke.mutate(k.id);
                }} aria-label={`Revoke ${k.name}`}>Revoke</button> : null}</td></tr>
            ))}</tbody>
          </table>
        )}
      </Section>
    </>
  );
}
