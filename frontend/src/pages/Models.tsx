// SPDX-License-Identifier: Apache-2.0
import { useEffect, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { Deployment, Model } from "../api/types";
import { Busy, DataTable, EmptyState, ErrorMessage, FieldError, Loadable, Section, fieldError,
  formatBytes, modelLabel, useConfirm } from "../components/ui";
import { QuotaUse, replicasInUse, useQuotas } from "../components/quota";
import { StateBadge } from "./Overview";

export const MAX_REPLICAS = 16;

/** Where a new model directory would go: beside the models registered from a directory. */
export function pathHint(models: Model[] | undefined): string {
  const local = models?.find((m) => m.source === "local" && m.path.startsWith("/"));
  if (!local) return "a directory inside the server's model roots";
  return `${local.path.replace(/\/+$/, "").replace(/\/[^/]+$/, "")}/my-model`;
}

function RegisterForm({ models }: { models?: Model[] }) {
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
      <div className="grow"><label htmlFor="model-path">Local directory</label>
        <input id="model-path" value={path} onChange={(e) => setPath(e.target.value)}
          placeholder={pathHint(models)} required aria-describedby="model-path-hint" />
        <FieldError id="model-path-error" message={fieldError(err, "path")} /></div>
      <div><label htmlFor="model-base">Base model (adapters only)</label>
        <input id="model-base" value={base} onChange={(e) => setBase(e.target.value)} />
        <FieldError id="model-base-error" message={fieldError(err, "base")} /></div>
      <button type="submit" disabled={register.isPending}>
        {register.isPending ? <Busy label="Validating" /> : "Register"}</button>
      <p id="model-path-hint" className="hint full">A directory on the server with a Hugging
        Face model (config.json, weights, tokenizer), inside the server's model roots
        (<code>POTLUCK_MODEL_ROOTS</code>; by default the data directory's <code>models/</code>).</p>
      {err && !known ? <ErrorMessage error={err} /> : null}
    </form>
  );
}

/** The replica count: applied with Enter or "Apply"; a refused count is said beside it. */
export function ScaleForm({ deployment: d, model }: { deployment: Deployment; model: Model }) {
  const client = useQueryClient();
  const [value, setValue] = useState(String(d.replicas));
  const [invalid, setInvalid] = useState<string | null>(null);
  useEffect(() => setValue(String(d.replicas)), [d.replicas]);
  const scale = useMutation({
    mutationFn: (replicas: number) => api(`/api/deployments/${d.id}`,
      { method: "PATCH", body: { replicas } }),
    onSuccess: () => setInvalid(null),
    onSettled: () => client.invalidateQueries({ queryKey: ["deployments"] }),
  });
  const id = `scale-${model.id}`;
  const message = invalid ?? (scale.error ? fieldError(scale.error, "replicas")
    ?? scale.error.message : undefined);
  return (
    <form className="scale" aria-label={`Scale ${model.name}`} noValidate onSubmit={(e) => {
      e.preventDefault();
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > MAX_REPLICAS || value.trim() === "") {
        setInvalid(`From 0 to ${MAX_REPLICAS} replicas.`);
        return;
      }
      setInvalid(null);
      scale.mutate(n);
    }}>
      <label htmlFor={id}>Replicas</label>
      <input id={id} type="number" min={0} max={MAX_REPLICAS} value={value} className="narrow"
        aria-invalid={Boolean(message)} aria-describedby={message ? `${id}-error` : undefined}
        onChange={(e) => { setValue(e.target.value); setInvalid(null); }} />
      <button type="submit" className="secondary"
        disabled={scale.isPending || value === String(d.replicas)}>
        {scale.isPending ? <Busy label="Applying" /> : "Apply"}</button>
      <FieldError id={`${id}-error`} message={message} />
    </form>
  );
}

export function Models() {
  const client = useQueryClient();
  const [confirm, dialog] = useConfirm();
  const models = useQuery({ queryKey: ["models"],
    queryFn: async () => items(await api<{ results: Model[] }>("/api/models")) });
  const deployments = useQuery({ queryKey: ["deployments"], refetchInterval: 3000,
    queryFn: async () => items(await api<{ results: Deployment[] }>("/api/deployments")) });
  const quotas = useQuotas();
  const change = useMutation({
    mutationFn: (call: { path: string; method: string; body?: unknown }) =>
      api(call.path, { method: call.method, body: call.body }),
    onSettled: () => client.invalidateQueries({ queryKey: ["deployments"] }),
  });
  // Deploying one model: a refusal (e.g. over the organization's replica quota) is said
  // beside that model's Deploy button.
  const deploy = useMutation({
    mutationFn: (model: Model) => api("/api/deployments", { method: "POST",
      body: { model: model.name, replicas: 1 } }),
    onSettled: () => client.invalidateQueries({ queryKey: ["deployments"] }),
  });
  const live = (model: Model) => deployments.data?.find(
    (d) => d.model_id === model.id && d.state.toLowerCase() !== "stopped");
  const anyPublic = models.data?.some((m) => live(m)?.public);

  return (
    <>
      <h1>Models</h1>
      {dialog}
      <Section title="Register a model from a local directory"><RegisterForm models={models.data} /></Section>
      <Section title="Registered models and adapters">
        <ErrorMessage error={change.error ?? deployments.error} />
        {quotas && deployments.data ? (
          <QuotaUse used={replicasInUse(deployments.data)} limit={quotas.replicas}
            noun="replicas in use" testId="replica-quota"
            extra={`at most ${quotas.gpus} GPU${quotas.gpus === 1 ? "" : "s"}`} />
        ) : null}
        <Loadable query={models} label="models" isEmpty={(m) => !m.length} empty={
          <EmptyState title="No model is registered">
            Register a directory above, or on the server with <code>potluck models add</code>.
          </EmptyState>}>
          {(list) => (
            <DataTable rows={list} rowKey={(m) => m.id} columns={[
              { label: "Name", render: (m) => <span title={m.name}>{modelLabel(m.name)}
                {m.public ? <span className="muted"> (public)</span> : null}</span> },
              { label: "Kind", render: (m) => m.kind },
              { label: "Base", render: (m) => m.base ?? "—" },
              { label: "Size", render: (m) => formatBytes(m.size_bytes) },
              { label: "Deployment", render: (m) => {
                const d = live(m);
                if (m.kind === "adapter") return <span className="muted">served by its base</span>;
                return d ? <><StateBadge state={d.state} /> {d.replica_counts.ready ?? 0}/{d.replicas} ready</>
                  : deployments.isPending ? "…" : "not deployed";
              } },
              { label: "Actions", bare: true, render: (m) => {
                const d = live(m);
                if (m.kind === "adapter") return null;
                if (d && d.public) {
                  return <span className="muted" title="Public models are shared by every organization on this server; only its operator scales or undeploys them.">
                    managed by the server's operator*</span>;
                }
                if (d) {
                  return (
                    <div className="actions">
                      <ScaleForm deployment={d} model={m} />
                      <button type="button" className="danger" aria-label={`Undeploy ${m.name}`}
                        disabled={change.isPending || d.state.toLowerCase() !== "active"}
                        onClick={async () => {
                          if (await confirm({ title: `Undeploy ${modelLabel(m.name)}?`, action: "Undeploy",
                            body: <p>Its {d.replicas} replica(s) finish the requests they hold, then
                              stop. Until you deploy it again, requests for it are refused and it
                              leaves the Playground.</p> })) {
                            change.mutate({ path: `/api/deployments/${d.id}`, method: "DELETE" });
                          }
                        }}>Undeploy</button>
                    </div>
                  );
                }
                const refused = deploy.variables?.id === m.id ? deploy.error : null;
                const id = `deploy-${m.id}-error`;
                return (
                  <div className="deploy">
                    <button type="button" disabled={change.isPending || deploy.isPending}
                      aria-label={`Deploy ${m.name}`} aria-describedby={refused ? id : undefined}
                      onClick={() => deploy.mutate(m)}>
                      {deploy.isPending && deploy.variables?.id === m.id
                        ? <Busy label="Deploying" /> : "Deploy"}</button>
                    <FieldError id={id} message={refused
                      ? fieldError(refused, "replicas") ?? refused.message : undefined} />
                  </div>
                );
              } },
            ]} />
          )}
        </Loadable>
        {anyPublic ? <p className="hint">* A public model is shared by every organization on
          this server: its operator scales or undeploys it there (<code>potluck scale</code>,
          {" "}<code>potluck undeploy</code>).</p> : null}
        {change.isPending ? <Busy label="Applying" /> : null}
      </Section>
    </>
  );
}
