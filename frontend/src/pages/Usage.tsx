// SPDX-License-Identifier: Apache-2.0
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip,
  XAxis, YAxis } from "recharts";
import { api, buildUrl } from "../api/client";
import type { UsageReport, UsageRow } from "../api/types";
import { DataTable, EmptyState, FieldError, Loadable, Section } from "../components/ui";

function daysAgo(n: number): string {
  return new Date(Date.now() - n * 86400000).toISOString().slice(0, 10);
}

export function rowLabel(row: UsageRow, groups: string[]): string {
  return groups.map((g) => {
    if (g !== "key") return String(row[g as keyof UsageRow] ?? "—");
    // Names repeat (a person's earlier Playground keys): the id tells them apart.
    return row.key ? `${row.key_name ?? "key"} (${row.key.slice(0, 8)})` : "(signed-in session)";
  }).join(" · ");
}

const ZERO = { requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, errors: 0,
  latency_p50_ms: 0, latency_p95_ms: 0, latency_p99_ms: 0 };

/** One row per day from start to end (UTC), zeros where nothing was used. */
export function everyDay(report: UsageReport): UsageRow[] {
  const byDay = new Map(report.rows.map((r) => [r.day?.slice(0, 10), r]));
  const days: UsageRow[] = [];
  const end = Date.parse(`${report.end}T00:00:00Z`);
  for (let t = Date.parse(`${report.start}T00:00:00Z`); t <= end; t += 86400000) {
    const day = new Date(t).toISOString().slice(0, 10);
    days.push(byDay.get(day) ?? { ...ZERO, day });
  }
  return days;
}

/** The period's own mistakes, said here (not "start: start is after end" from the server). */
export function periodError(start: string, end: string): string | undefined {
  if (!start || !end) return "Choose both dates.";
  if (start > end) return "The first day is after the last: swap them.";
  if ((Date.parse(end) - Date.parse(start)) / 86400000 >= 366) return "A report spans at most 366 days.";
  return undefined;
}

function Table({ report }: { report: UsageReport }) {
  const ms = (n: number) => `${Math.round(n)} ms`;
  return (
    <DataTable rows={report.rows.map((r, i) => ({ ...r, i }))} rowKey={(r) => String(r.i)} columns={[
      { label: report.group_by.join(" · "), render: (r) => rowLabel(r, report.group_by) },
      { label: "Requests", render: (r) => r.requests },
      { label: "Prompt", render: (r) => r.prompt_tokens },
      { label: "Completion", render: (r) => r.completion_tokens },
      { label: "Errors", render: (r) => r.errors },
      { label: "p50", render: (r) => ms(r.latency_p50_ms) },
      { label: "p95", render: (r) => ms(r.latency_p95_ms) },
      { label: "p99", render: (r) => ms(r.latency_p99_ms) },
    ]} />
  );
}

function useUsage(group: string, start: string, end: string, enabled: boolean) {
  return useQuery({
    queryKey: ["usage", group, start, end], refetchInterval: 5000, enabled,
    queryFn: () => api<UsageReport>("/api/usage", { query: { group_by: group, start, end } }),
  });
}

export function Usage() {
  const [start, setStart] = useState(daysAgo(13));
  const [end, setEnd] = useState(daysAgo(0));
  const invalid = periodError(start, end);
  const byDay = useUsage("day", start, end, !invalid);
  const byModel = useUsage("model", start, end, !invalid);
  const byKey = useUsage("key", start, end, !invalid);
  return (
    <>
      <h1>Usage</h1>
      <form className="inline-form" aria-label="Period" onSubmit={(e) => e.preventDefault()}>
        <div><label htmlFor="usage-start">From</label>
          <input id="usage-start" type="date" value={start} onChange={(e) => setStart(e.target.value)}
            aria-invalid={Boolean(invalid)} aria-describedby={invalid ? "usage-period-error" : undefined} /></div>
        <div><label htmlFor="usage-end">To</label>
          <input id="usage-end" type="date" value={end} onChange={(e) => setEnd(e.target.value)}
            aria-invalid={Boolean(invalid)} /></div>
        <a className="button secondary" href={buildUrl("/api/usage", { group_by: "day,model,key", start, end, format: "csv" })}
          download aria-disabled={Boolean(invalid)}>Export CSV</a>
        <FieldError id="usage-period-error" message={invalid} />
      </form>
      {invalid ? null : (
        <>
          <Section title="By day">
            <Loadable query={byDay} label="usage" isEmpty={(r) => !r.rows.length} empty={
              <EmptyState title="No usage in this period">
                Send a request from the Playground or with an API key; it appears here within seconds.
              </EmptyState>}>
              {(report) => {
                const days = everyDay(report);
                return (
                  <>
                    <div className="chart" data-testid="usage-by-day" data-days={days.length}>
                      <ResponsiveContainer width="100%" height={240}>
                        <BarChart data={days}>
                          <CartesianGrid strokeDasharray="3 3" /><XAxis dataKey="day" /><YAxis /><Tooltip /><Legend />
                          <Bar dataKey="prompt_tokens" stackId="t" fill="#1d4ed8" name="prompt tokens" maxBarSize={48} isAnimationActive={false} />
                          <Bar dataKey="completion_tokens" stackId="t" fill="#059669" name="completion tokens" maxBarSize={48} isAnimationActive={false} />
                        </BarChart>
                      </ResponsiveContainer>
                      <ResponsiveContainer width="100%" height={200}>
                        <LineChart data={days.map((d) => (d.requests ? d : { day: d.day }))}>
                          <CartesianGrid strokeDasharray="3 3" /><XAxis dataKey="day" /><YAxis unit=" ms" width={72} /><Tooltip /><Legend />
                          <Line dataKey="latency_p50_ms" name="p50" stroke="#1d4ed8" isAnimationActive={false} />
                          <Line dataKey="latency_p95_ms" name="p95" stroke="#d97706" isAnimationActive={false} />
                          <Line dataKey="latency_p99_ms" name="p99" stroke="#dc2626" isAnimationActive={false} />
                        </LineChart>
                      </ResponsiveContainer>
                    </div>
                    <Table report={report} />
                  </>
                );
              }}
            </Loadable>
          </Section>
          {byDay.data?.rows.length ? (
            <>
              <Section title="By model"><Loadable query={byModel} label="usage by model">
                {(report) => <Table report={report} />}</Loadable></Section>
              <Section title="By key"><Loadable query={byKey} label="usage by key">
                {(report) => <Table report={report} />}</Loadable></Section>
            </>
          ) : null}
        </>
      )}
    </>
  );
}
