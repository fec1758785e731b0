// SPDX-License-Identifier: Apache-2.0
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { Deployment, Model } from "../api/types";
import { Busy, EmptyState, ErrorMessage, FieldError, Section, fieldError, formatBytes }
  from "../components/ui";
import { StateBadge } from "./Overview";

function RegisterForm() {
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [path, setPath] = useState("");
  const [base, setBase] = useState("");
  const register = useMutation({
    mutationFn: () => api<Model>("/api/models", { method: "POST",
      body: { name, source: "local", path, ...(base ? { base } : {}) } }),
    onSuccess: async () => {
      setName(""); setPath(""); setBase("");
      await client.invalidateQueries({ queryKey: ["models"] });
    },
  });
  const submit = (e: FormEvent) => { e.preventDefault(); register.mutate(); };
  const err = register.error;
  const known = ["name", "path", "base"].some((f) => fieldError(err, f));
  return (
    <form onSubmit={submit} aria-label="Register a model" className="inline-form">
      <div><label htmlFor="model-name">Name</label>
        <input id="model-name" value={name} onChange={(e) => setName(e.target.value)} required />
        <FieldError id="model-name-error" message={fieldError(err, "name")} /></div>
      <div><label htmlFor="model-path">Local directory</label>
        <input id="model-path" value={path} onChange={(e) => setPath(e.target.value)}
          placeholder="/srv/models/my-model" required />
        <FieldError id="model-path-error" message={fieldError(err, "path")} /></div>
      <div><label htmlFor="model-base">Base model (adapters only)</label>
        <input id="model-base" value={base} onChange={(e) => setBase(e.target.value)} />
        <FieldError id="model-base-error" message={fieldError(err, "base")} /></div>
      <button type="submit" disabled={register.isPending}>
        {register.isPending ? <Busy label="Validating" /> : "Register"}</button>
      {err && !known ? <ErrorMessage error={err} /> : null}
    </form>
  );
}

export function Models() {
  const client = useQueryClient();
  const models = useQuery({ queryKey: ["models"],
    queryFn: async () => items(await api<{ results: Model[] }>("/api/models")) });
  const deployments = useQuery({ queryKey: ["deployments"], refetchInterval: 3000,
    queryFn: async () => items(await api<{ results: Deployment[] }>("/api/deployments")) });
  const change = useMutation({
    mutationFn: (call: { path: string; method: string; body?: unknown }) =>
      api(call.path, { method: call.method, body: call.body }),
    onSettled: () => client.invalidateQueries({ queryKey: ["deployments"] }),
  });
  const live = (model: Model) => deployments.data?.find(
    (d) => d.model_id === model.id && d.state.toLowerCase() !== "stopped");

  return (
    <>
      <h1>Models</h1>
      <Section title="Register a model from a local directory"><RegisterForm /></Section>
      <Section title="Registered models and adapters">
        <ErrorMessage error={models.error ?? change.error} />
        {models.data && !models.data.length ? (
          <EmptyState title="No model is registered">
            Register a directory above, or with <code>potluck models register</code>.
          </EmptyState>
        ) : (
          <table>
            <thead><tr><th>Name</th><th>Kind</th><th>Base</th><th>Size</th><th>Deployment</th>
              <th>Actions</th></tr></thead>
            <tbody>{models.data?.map((m) => {
              const d = live(m);
              return (
                <tr key={m.id}><td>{m.name}{m.public ? <span className="muted"> (public)</span> : null}</td>
                  <td>{m.kind}</td><td>{m.base ?? "—"}</td><td>{formatBytes(m.size_bytes)}</td>
                  <td>{d ? <><StateBadge state={d.state} /> {d.replica_counts.ready ?? 0}/{d.replicas} ready</> : "not deployed"}</td>
                  <td className="actions">
                    {m.kind === "adapter" ? <span className="muted">served by its base</span> : d && !d.public ? (
                      <>
                        <label className="sr-only" htmlFor={`scale-${m.id}`}>Replicas of {m.name}</label>
                        <input id={`scale-${m.id}`} type="number" min={0} max={16} defaultValue={d.replicas}
                          className="narrow" onBlur={(e) => {
                            const n = Number(e.target.value);
                            if (n !== d.replicas) change.mutate({ path: `/api/deployments/${d.id}`,
                              method: "PATCH", body: { replicas: n } });
                          }} />
                        <button type="button" onClick={() => change.mutate({
                          path: `/api/deployments/${d.id}`, method: "DELETE" })}>Undeploy</button>
                      </>
                    ) : d ? <span className="muted">operator-managed</span> : (
                      <button type="button" onClick={() => change.mutate({ path: "/api/deployments",
                        method: "POST", body: { model: m.name, replicas: 1 } })}>Deploy</button>
                    )}
                  </td></tr>
              );
            })}</tbody>
          </table>
        )}
        {change.isPending ? <Busy label="Applying" /> : null}
      </Section>
    </>
  );
}
