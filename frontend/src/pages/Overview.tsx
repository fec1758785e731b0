// SPDX-License-Identifier: Apache-2.0
import { useQuery } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { Deployment, Node, Replica, UsageReport } from "../api/types";
import { EmptyState, ErrorMessage, Section, ago, formatBytes } from "../components/ui";

const LIVE = { refetchInterval: 3000 };

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state.toLowerCase()}`}>{state.toUpperCase()}</span>;
}

/** A deployment's live replicas; stopped ones are history, shown only as a count. */
function current(replicas: Replica[] | undefined, deployment: string): Replica[] {
  return (replicas ?? []).filter((r) => r.deployment === deployment
    && r.state.toLowerCase() !== "stopped");
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

  return (
    <>
      <h1>Overview</h1>
      <div className="stats" aria-label="Usage in the last hour">
        <div className="stat"><span>Requests, last hour</span>
          <strong data-testid="requests-hour">{row?.requests ?? 0}</strong></div>
        <div className="stat"><span>Tokens, last hour</span>
          <strong>{row?.total_tokens ?? 0}</strong></div>
        <div className="stat"><span>p95 latency</span>
          <strong>{row ? `${Math.round(row.latency_p95_ms)} ms` : "—"}</strong></div>
      </div>
      <Section title="Nodes">
        <ErrorMessage error={nodes.error} />
        {nodes.data && !nodes.data.length ? (
          <EmptyState title="No node has joined yet">
            Start one with <code>potluck agent</code> (or <code>potluck up</code>).
          </EmptyState>
        ) : (
          <table>
            <thead><tr><th>Node</th><th>State</th><th>CPUs</th><th>Memory</th><th>Engine</th>
              <th>Heartbeat</th></tr></thead>
            <tbody>{nodes.data?.map((n) => (
              <tr key={n.name}><td>{n.name}</td><td><StateBadge state={n.state} /></td>
                <td>{n.cpu_count ?? "—"} {n.cpu_isa}</td><td>{formatBytes(n.memory_bytes)}</td>
                <td>{n.engine}</td><td>{ago(n.last_heartbeat)}</td></tr>
            ))}</tbody>
          </table>
        )}
      </Section>
      <Section title="Deployments and replicas">
        <ErrorMessage error={deployments.error ?? replicas.error} />
        {deployments.data && !deployments.data.length ? (
          <EmptyState title="Nothing is deployed">
            Deploy a model from the Models page.
          </EmptyState>
        ) : deployments.data?.map((d) => (
          <div key={d.id} className="deployment">
            <h3>{d.model} <StateBadge state={d.state} />{" "}
              <span className="muted">{d.replicas} wanted</span></h3>
            {d.replicas > 0 && !current(replicas.data, d.id).length ? (
              <p className="muted">No replica is running yet: the node agent starts them within
                seconds (check <code>potluck ps</code> if it does not).</p>) : null}
            <ul className="replicas">
              {current(replicas.data, d.id).map((r) => (
                <li key={r.id}><StateBadge state={r.state} /> on {r.node}
                  {r.restarts ? ` · ${r.restarts} restarts` : ""}
                  {r.state.toLowerCase() === "failed" && r.reason ? (
                    <span className="error"> — {r.reason}</span>) : null}</li>
              ))}
            </ul>
          </div>
        ))}
      </Section>
    </>
  );
}
