// SPDX-License-Identifier: Apache-2.0
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { ApiKey } from "../api/types";
import { Busy, CopyButton, DataTable, EmptyState, ErrorMessage, FieldError, Loadable, Section,
  ago, fieldError, useConfirm } from "../components/ui";

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
  const [noScope, setNoScope] = useState(false);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    // Said here, not as the server's "This list may not be empty."
    if (!scopes.length) { setNoScope(true); return; }
    create.mutate();
  };
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
            onChange={(e) => {
              setNoScope(false);
              setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s));
            }} />
            {s}</label>
        ))}
        <FieldError id="key-scopes-error" message={noScope ? "Choose at least one scope."
          : fieldError(err, "scopes")} />
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
      <button type="button" className="secondary" onClick={onDone}>I have copied it</button>
    </div>
  );
}

export function Keys() {
  const client = useQueryClient();
  const [confirm, dialog] = useConfirm();
  const [secret, setSecret] = useState<string | null>(null);
  const [showInactive, setShowInactive] = useState(false);
  const keys = useQuery({ queryKey: ["keys"],
    queryFn: async () => items(await api<{ results: ApiKey[] }>("/api/keys")) });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/api/keys/${id}/revoke`, { method: "POST" }),
    onSettled: () => client.invalidateQueries({ queryKey: ["keys"] }),
  });
  const inactive = keys.data?.filter((k) => !k.is_active).length ?? 0;
  return (
    <>
      <h1>API keys</h1>
      {dialog}
      <Section title="New key">
        <NewKeyForm onCreated={async (key) => {
          setSecret(key.key ?? null);
          await client.invalidateQueries({ queryKey: ["keys"] });
        }} />
        {secret ? <SecretOnce secret={secret} onDone={() => setSecret(null)} /> : null}
      </Section>
      <Section title="Keys" actions={inactive ? (
        <button type="button" className="secondary" aria-pressed={showInactive}
          onClick={() => setShowInactive(!showInactive)}>
          {showInactive ? "Hide" : "Show"} {inactive} revoked or expired</button>) : null}>
        <ErrorMessage error={revoke.error} />
        <Loadable query={keys} label="keys" isEmpty={(list) => !list.length} empty={
          <EmptyState title="No API key yet">Create one above to call the API from your code.</EmptyState>}>
          {(list) => (
            <DataTable rows={list.filter((k) => showInactive || k.is_active)} rowKey={(k) => k.id} columns={[
              { label: "Name", render: (k) => k.name },
              { label: "Prefix", render: (k) => <code>{k.prefix}</code> },
              { label: "Scopes", render: (k) => k.scopes.join(", ") },
              { label: "Created by", render: (k) => k.created_by ?? "—" },
              { label: "Expires", render: (k) => (k.expires_at ? k.expires_at.slice(0, 10) : "never") },
              { label: "Last used", render: (k) => ago(k.last_used_at) },
              { label: "State", render: (k) => (k.is_active ? "active" : k.revoked_at ? "revoked" : "expired") },
              { label: "Actions", bare: true, render: (k) => (k.is_active ? (
                <button type="button" className="danger" aria-label={`Revoke ${k.name}`}
                  disabled={revoke.isPending} onClick={async () => {
                    if (await confirm({ title: `Revoke ${k.name}?`, action: "Revoke",
                      body: <p>Programs using <code>{k.prefix}…</code> stop working within
                        seconds. This cannot be undone.</p> })) revoke.mutate(k.id);
                  }}>Revoke</button>) : null) },
            ]} />
          )}
        </Loadable>
      </Section>
    </>
  );
}
