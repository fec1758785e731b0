// SPDX-License-Identifier: Apache-2.0
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip,
  XAxis, YAxis } from "recharts";
import { api, buildUrl } from "../api/client";
import type { UsageReport, UsageRow } from "../api/types";
import { EmptyState, ErrorMessage, Section } from "../components/ui";

function daysAgo(n: number): string {
  return new Date(Date.now() - n * 86400000).toISOString().slice(0, 10);
}

export function rowLabel(row: UsageRow, groups: string[]): string {
  return groups.map((g) => {
    if (g !== "key") return String(row[g as keyof UsageRow] ?? "—");
    // Names repeat (every Playground key is "console playground"): the id tells them apart.
    return row.key ? `${row.key_name ?? "key"} (${row.key.slice(0, 8)})` : "(signed-in session)";
  }).join(" · ");
}

function Table({ report }: { report: UsageReport }) {
  return (
    <table>
      <thead><tr><th>{report.group_by.join(" · ")}</th><th>Requests</th><th>Prompt</th>
        <th>Completion</th><th>Errors</th><th>p50</th><th>p95</th><th>p99</th></tr></thead>
      <tbody>{report.rows.map((r, i) => (
        <tr key={i}><td>{rowLabel(r, report.group_by)}</td><td>{r.requests}</td>
          <td>{r.prompt_tokens}</td><td>{r.completion_tokens}</td><td>{r.errors}</td>
          <td>{Math.round(r.latency_p50_ms)} ms</td><td>{Math.round(r.latency_p95_ms)} ms</td>
          <td>{Math.round(r.latency_p99_ms)} ms</td></tr>
      ))}</tbody>
    </table>
  );
}

function useUsage(group: string, start: string, end: string) {
  return useQuery({
    queryKey: ["usage", group, start, end], refetchInterval: 5000,
    queryFn: () => api<UsageReport>("/api/usage", { query: { group_by: group, start, end } }),
  });
}

export function Usage() {
  const [start, setStart] = useState(daysAgo(13));
  const [end, setEnd] = useState(daysAgo(0));
  const byDay = useUsage("day", start, end);
  const byModel = useUsage("model", start, end);
  const byKey = useUsage("key", start, end);
  const error = byDay.error ?? byModel.error ?? byKey.error;
  const empty = byDay.data && !byDay.data.rows.length;
  return (
    <>
      <h1>Usage</h1>
      <form className="inline-form" aria-label="Period" onSubmit={(e) => e.preventDefault()}>
        <label htmlFor="usage-start">From</label>
        <input id="usage-start" type="date" value={start} onChange={(e) => setStart(e.target.value)} />
        <label htmlFor="usage-end">To</label>
        <input id="usage-end" type="date" value={end} onChange={(e) => setEnd(e.target.value)} />
        <a className="button" href={buildUrl("/api/usage", { group_by: "day,model,key", start, end, format: "csv" })}
          download>Export CSV</a>
      </form>
      <ErrorMessage error={error} />
      {empty ? (
        <EmptyState title="No usage in this period">
          Send a request from the Playground or with an API key; it appears here within seconds.
        </EmptyState>
      ) : null}
      {byDay.data?.rows.length ? (
        <Section title="By day">
          <div className="chart" data-testid="usage-by-day">
            <ResponsiveContainer width="100%" height={240}>
              <BarChart data={byDay.data.rows}>
                <CartesianGrid strokeDasharray="3 3" /><XAxis dataKey="day" /><YAxis /><Tooltip /><Legend />
                <Bar dataKey="prompt_tokens" stackId="t" fill="#1d4ed8" name="prompt tokens" isAnimationActive={false} />
                <Bar dataKey="completion_tokens" stackId="t" fill="#059669" name="completion tokens" isAnimationActive={false} />
              </BarChart>
            </ResponsiveContainer>
            <ResponsiveContainer width="100%" height={200}>
              <LineChart data={byDay.data.rows}>
                <CartesianGrid strokeDasharray="3 3" /><XAxis dataKey="day" /><YAxis unit=" ms" /><Tooltip /><Legend />
                <Line dataKey="latency_p50_ms" name="p50" stroke="#1d4ed8" isAnimationActive={false} />
                <Line dataKey="latency_p95_ms" name="p95" stroke="#d97706" isAnimationActive={false} />
                <Line dataKey="latency_p99_ms" name="p99" stroke="#dc2626" isAnimationActive={false} />
              </LineChart>
            </ResponsiveContainer>
          </div>
          <Table report={byDay.data} />
        </Section>
      ) : null}
      {byModel.data?.rows.length ? <Section title="By model"><Table report={byModel.data} /></Section> : null}
      {byKey.data?.rows.length ? <Section title="By key"><Table report={byKey.data} /></Section> : null}
    </>
  );
}
