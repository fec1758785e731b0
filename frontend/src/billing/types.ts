// SPDX-License-Identifier: Apache-2.0
/** Shapes of /api/billing/... (enterprise metered billing). Amounts are decimal strings. */

export interface Banner { level: "warning" | "error"; kind: string; message: string }

export interface BillingStatus {
  currency: string;
  spend: { day: string; month: string };
  banners: Banner[];
  payment: { state: "ok" | "grace" | "blocked"; message: string; grace_until: string | null };
  stripe: { customer_id: string | null; subscription_status: string | null;
    meter_units: Record<string, number> } | null;
}

export interface SpendRow {
  day?: string; model?: string; key?: string | null; key_name?: string | null; kind?: string;
  amount: string; amount_display: string; list_amount: string; quantity: number; lines: number;
}

export interface SpendReport { currency: string; group_by: string[]; rows: SpendRow[] }

export interface Budget {
  id: string; period: "day" | "month"; api_key: string | null; api_key_name: string | null;
  description: string; soft_limit: string | null; hard_limit: string | null;
  emails: string[]; webhook_url: string | null; spent: string; spent_display: string;
  resets_at: string; webhook_secret?: string;
}

export interface InvoiceLine { id: string; description: string; amount: number; quantity: number | null }

export interface Invoice {
  id: string; number: string; status: string; currency: string; amount_due: number;
  amount_paid: number; total: number; hosted_invoice_url: string | null;
  invoice_pdf: string | null; period_start: string | null; period_end: string | null;
  lines: InvoiceLine[];
}

export interface ReportRow {
  day: string | null; model: string; requests: number; input_tokens: number;
  cached_tokens: number; output_tokens: number; theoretical_revenue: string;
  billed_revenue: string; cost: string; margin: string;
  cost_profit_margin_percent: string | null; billed_margin_percent: string | null;
}

export interface CostRevenueReport {
  start: string; end: string; currency: string; days: ReportRow[]; models: ReportRow[];
  total: ReportRow;
}
