// SPDX-License-Identifier: Apache-2.0
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { api, items } from "../api/client";
import type { Deployment, Node, Replica, UsageReport } from "../api/types";
import { DataTable, EmptyState, ErrorMessage, Loadable, Loading, Section, ago, formatBytes }
  from "../components/ui";

const LIVE = { refetchInterval: 3000 };

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state.toLowerCase()}`}>{state.toUpperCase()}</span>;
}

/** A deployment's live replicas; stopped ones are history, shown only as a count. */
function current(replicas: Replica[] | undefined, deployment: string): Replica[] {
  return (replicas ?? []).filter((r) => r.deployment === deployment
    && r.state.toLowerCase() !== "stopped");
}

/** "8 CPUs" and the instruction-set features, one by one (not run together). */
export function CpuCell({ node }: { node: Node }) {
  const features = Array.isArray(node.cpu_isa) ? node.cpu_isa
    : String(node.cpu_isa ?? "").split(/[\s,]+/).filter(Boolean);
  return (
    <>
      {node.cpu_count ?? "—"} CPUs
      {features.length ? (
        <ul className="features" aria-label="CPU features">
          {features.map((f) => <li key={f}>{f}</li>)}</ul>
      ) : null}
    </>
  );
}

function DeploymentView({ deployment: d, replicas }: { deployment: Deployment; replicas?: Replica[] }) {
  const live = current(replicas, d.id);
  const state = d.state.toLowerCase();
  return (
    <div className="deployment">
      <h3>{d.model} <StateBadge state={d.state} />{" "}
        {state === "active" ? <span className="muted">{live.filter((r) => r.state.toLowerCase() === "ready").length}/{d.replicas} ready</span>
          : <span className="muted">replicas draining, then stopping</span>}</h3>
      {state === "active" && d.replicas > 0 && replicas && !live.length ? (
        <p className="muted">No replica is running yet: the node agent starts them within
          seconds (check <code>potluck ps</code> if it does not).</p>) : null}
      {state === "active" && d.replicas === 0 ? (
        <p className="muted">Scaled to zero replicas: scale it up on the Models page.</p>) : null}
      <ul className="replicas">
        {live.map((r) => (
          <li key={r.id}><StateBadge state={r.state} /> on {r.node}
            {r.restarts ? ` · ${r.restarts} restarts` : ""}
            {r.state.toLowerCase() === "failed" && r.reason ? (
              <span className="error"> — {r.reason}</span>) : null}</li>
        ))}
      </ul>
    </div>
  );
}

export function Overview() {
  const nodes = useQuery({ queryKey: ["nodes"], ...LIVE,
    queryFn: async () => items(await api<{ results: Node[] }>("/api/nodes")) });
  const deployments = useQuery({ queryKey: ["deployments"], ...LIVE,
    queryFn: async () => items(await api<{ results: Deployment[] }>("/api/deployments")) });
  const replicas = useQuery({ queryKey: ["replicas"], ...LIVE,
    queryFn: async () => items(await api<{ results: Replica[] }>("/api/replicas")) });
  // The last hour, by hour (one or two rows): summed here; p95 is the worse hour's.
  const usage = useQuery({ queryKey: ["usage", "last-hour"], ...LIVE,
    queryFn: () => api<UsageReport>("/api/usage", { query: {
      group_by: "hour", since: new Date(Date.now() - 3600_000).toISOString() } }) });
  const rows = usage.data?.rows ?? [];
  const row = rows.length ? {
    requests: rows.reduce((n, r) => n + r.requests, 0),
    total_tokens: rows.reduce((n, r) => n + r.total_tokens, 0),
    latency_p95_ms: Math.max(...rows.map((r) => r.latency_p95_ms)),
  } : undefined;
  const shown = usage.isPending ? "…" : undefined;

  return (
    <>
      <h1>Overview</h1>
      <div className="stats" aria-label="Usage in the last hour">
        <div className="stat"><span>Requests, last hour</span>
          <strong data-testid="requests-hour">{shown ?? row?.requests ?? 0}</strong></div>
        <div className="stat"><span>Tokens, last hour</span>
          <strong>{shown ?? row?.total_tokens ?? 0}</strong></div>
        <div className="stat"><span>p95 latency</span>
          <strong>{shown ?? (row ? `${Math.round(row.latency_p95_ms)} ms` : "—")}</strong></div>
      </div>
      {usage.isError ? <ErrorMessage error={usage.error} /> : null}
      <Section title="Nodes">
        <Loadable query={nodes} label="nodes" isEmpty={(n) => !n.length} empty={
          <EmptyState title="No node has joined yet">
            Start one with <code>potluck agent</code> (or <code>potluck up</code>).
          </EmptyState>}>
          {(list) => (
            <DataTable rows={list} rowKey={(n) => n.name} columns={[
              { label: "Node", render: (n) => n.name },
              { label: "State", render: (n) => <StateBadge state={n.state} /> },
              { label: "CPUs", render: (n) => <CpuCell node={n} /> },
              { label: "Memory", render: (n) => formatBytes(n.memory_bytes) },
              { label: "Engine", render: (n) => n.engine },
              { label: "Heartbeat", render: (n) => ago(n.last_heartbeat) },
            ]} />
          )}
        </Loadable>
      </Section>
      <Section title="Deployments and replicas">
        <Loadable query={deployments} label="deployments"
          isEmpty={(list) => !list.some((d) => d.state.toLowerCase() !== "stopped")} empty={
            <EmptyState title="Nothing is deployed">
              Deploy a model from the <Link to="/models">Models page</Link>.
            </EmptyState>}>
          {(list) => (
            <>
              {replicas.isPending ? <Loading label="replicas" /> : null}
              <ErrorMessage error={replicas.error} />
              {list.filter((d) => d.state.toLowerCase() !== "stopped").map((d) => (
                <DeploymentView key={d.id} deployment={d} replicas={replicas.data} />
              ))}
            </>
          )}
        </Loadable>
      </Section>
    </>
  );
}
