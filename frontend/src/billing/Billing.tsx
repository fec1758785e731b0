// SPDX-License-Identifier: Apache-2.0
/** The billing page (enterprise metered billing): banners, spend by day and model,
 * budgets, invoices and, for operators, cost vs revenue. Every call is /api/billing/...;
 * a 403 (no licence, or not an operator) hides the part it concerns. */
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis,
  YAxis } from "recharts";
import { ApiError, api, buildUrl } from "../api/client";
import { EmptyState, ErrorMessage, Section } from "../components/ui";
import { minorToText, spendByDay } from "./spend";
import type { BillingStatus, Budget, CostRevenueReport, Invoice, SpendReport } from "./types";

function forbidden(error: unknown): boolean {
  return error instanceof ApiError && error.status === 403;
}

export function Banners({ status }: { status: BillingStatus }) {
  if (!status.banners.length) return null;
  return (
    <div className="banners">
      {status.banners.map((b, i) => (
        <p key={i} role={b.level === "error" ? "alert" : "status"}
          className={b.level === "error" ? "error" : "warning"}>{b.message}</p>
      ))}
    </div>
  );
}

export function SpendChart({ report }: { report: SpendReport }) {
  const { points, models } = spendByDay(report.rows);
  if (!points.length) return <EmptyState title="No priced usage in this period yet" />;
  return (
    <>
      <div className="chart" aria-label="Spend by day and model">
        <ResponsiveContainer width="100%" height={240}>
          <BarChart data={points}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="day" /><YAxis /><Tooltip /><Legend />
            {models.map((m) => <Bar key={m} dataKey={m} stackId="spend" />)}
          </BarChart>
        </ResponsiveContainer>
      </div>
      <table>
        <thead><tr><th>Day</th><th>Model</th><th>Spend ({report.currency})</th></tr></thead>
        <tbody>{report.rows.map((r, i) => (
          <tr key={i}><td>{r.day}</td><td>{r.model}</td><td>{r.amount_display}</td></tr>
        ))}</tbody>
      </table>
    </>
  );
}

export function BudgetForm({ onSaved }: { onSaved: (b: Budget) => void }) {
  const [period, setPeriod] = useState("month");
  const [soft, setSoft] = useState("");
  const [hard, setHard] = useState("");
  const save = useMutation({
    mutationFn: () => api<Budget>("/api/billing/budgets", {
      method: "POST", body: { period, soft_limit: soft || null, hard_limit: hard || null } }),
    onSuccess: onSaved,
  });
  return (
    <form onSubmit={(e) => { e.preventDefault(); save.mutate(); }} aria-label="New budget">
      <label htmlFor="budget-period">Period</label>
      <select id="budget-period" value={period} onChange={(e) => setPeriod(e.target.value)}>
        <option value="day">Daily</option><option value="month">Monthly</option>
      </select>
      <label htmlFor="budget-soft">Soft limit (alert)</label>
      <input id="budget-soft" inputMode="decimal" value={soft}
        onChange={(e) => setSoft(e.target.value)} />
      <label htmlFor="budget-hard">Hard limit (refuse)</label>
      <input id="budget-hard" inputMode="decimal" value={hard}
        onChange={(e) => setHard(e.target.value)} />
      <ErrorMessage error={save.error} />
      <button type="submit" disabled={save.isPending}>Add budget</button>
    </form>
  );
}

export function Budgets({ budgets, currency }: { budgets: Budget[]; currency: string }) {
  if (!budgets.length) return <EmptyState title="No budgets">Spend is not limited.</EmptyState>;
  return (
    <table>
      <thead><tr><th>Budget</th><th>Spent ({currency})</th><th>Soft</th><th>Hard</th>
        <th>Resets</th></tr></thead>
      <tbody>{budgets.map((b) => (
        <tr key={b.id}><td>{b.description}</td><td>{b.spent_display}</td>
          <td>{b.soft_limit ?? "—"}</td><td>{b.hard_limit ?? "—"}</td>
          <td>{new Date(b.resets_at).toLocaleString()}</td></tr>
      ))}</tbody>
    </table>
  );
}

export function Invoices({ invoices }: { invoices: Invoice[] }) {
  if (!invoices.length) return <EmptyState title="No invoices yet" />;
  return (
    <table>
      <thead><tr><th>Invoice</th><th>Status</th><th>Total</th><th>Lines</th><th>PDF</th></tr></thead>
      <tbody>{invoices.map((i) => (
        <tr key={i.id}>
          <td>{i.number || i.id}</td><td>{i.status}</td>
          <td>{minorToText(i.total)} {i.currency}</td>
          <td><ul>{i.lines.map((l) => (
            <li key={l.id}>{l.description}: {minorToText(l.amount)} {i.currency}</li>
          ))}</ul></td>
          <td>{i.invoice_pdf ? <a href={i.invoice_pdf}>Download PDF</a> : "—"}</td>
        </tr>
      ))}</tbody>
    </table>
  );
}

export function CostRevenue({ report }: { report: CostRevenueReport }) {
  const data = report.models.map((m) => ({
    model: m.model, theoretical: Number(m.theoretical_revenue),
    billed: Number(m.billed_revenue), cost: Number(m.cost) }));
  const t = report.total;
  return (
    <>
      <div className="chart" aria-label="Cost vs revenue by model">
        <ResponsiveContainer width="100%" height={240}>
          <BarChart data={data}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="model" /><YAxis /><Tooltip /><Legend />
            <Bar dataKey="theoretical" name="Theoretical revenue" />
            <Bar dataKey="billed" name="Billed revenue" />
            <Bar dataKey="cost" name="Cost" />
          </BarChart>
        </ResponsiveContainer>
      </div>
      <p>
        Total: cost {t.cost} {report.currency}, theoretical revenue {t.theoretical_revenue},
        billed {t.billed_revenue}; cost-profit margin {t.cost_profit_margin_percent ?? "—"} %.
      </p>
    </>
  );
}

export function Billing() {
  const client = useQueryClient();
  const status = useQuery({ queryKey: ["billing", "status"], refetchInterval: 10000,
    queryFn: () => api<BillingStatus>("/api/billing/status") });
  const spend = useQuery({ queryKey: ["billing", "spend"], enabled: status.isSuccess,
    queryFn: () => api<SpendReport>("/api/billing/spend", { query: { group_by: "day,model" } }) });
  const budgets = useQuery({ queryKey: ["billing", "budgets"], enabled: status.isSuccess,
    queryFn: () => api<Budget[]>("/api/billing/budgets") });
  const invoices = useQuery({ queryKey: ["billing", "invoices"], enabled: status.isSuccess,
    queryFn: () => api<Invoice[]>("/api/billing/invoices") });
  const report = useQuery({ queryKey: ["billing", "report"], enabled: status.isSuccess,
    retry: false, queryFn: () => api<CostRevenueReport>("/api/billing/report") });
  if (status.error) {
    return forbidden(status.error)
      ? <EmptyState title="Metered billing is not licensed">An operator installs a licence that
          grants “billing” with <code>potluck license install</code>.</EmptyState>
      : <ErrorMessage error={status.error} />;
  }
  if (!status.data) return <p className="loading" role="status">Loading billing…</p>;
  const currency = status.data.currency;
  return (
    <>
      <h1>Billing</h1>
      <Banners status={status.data} />
      <p>Spent today: {status.data.spend.day} {currency}; this month: {status.data.spend.month} {currency}.</p>
      <Section title="Spend by day and model" actions={
        <a href={buildUrl("/api/billing/spend", { group_by: "day,model", format: "csv" })}>CSV</a>}>
        {spend.data ? <SpendChart report={spend.data} /> : <ErrorMessage error={spend.error} />}
      </Section>
      <Section title="Budgets">
        {budgets.data ? <Budgets budgets={budgets.data} currency={currency} /> : null}
        <BudgetForm onSaved={() => client.invalidateQueries({ queryKey: ["billing"] })} />
      </Section>
      <Section title="Invoices">
        {invoices.data ? <Invoices invoices={invoices.data} /> : <ErrorMessage error={invoices.error} />}
      </Section>
      {report.data ? (
        <Section title="Cost vs revenue (this month)"><CostRevenue report={report.data} /></Section>
      ) : null}
    </>
  );
}
