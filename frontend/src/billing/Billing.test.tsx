// SPDX-License-Identifier: Apache-2.0
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeServer, renderPage } from "../test-utils";
import { Billing, Invoices } from "./Billing";
import { minorToText, spendByDay } from "./spend";

// jsdom has no layout: recharts' ResponsiveContainer needs a ResizeObserver to exist.
beforeEach(() => vi.stubGlobal("ResizeObserver", class {
  observe() { /* no layout in jsdom */ }
  unobserve() { /* no layout in jsdom */ }
  disconnect() { /* no layout in jsdom */ }
}));
afterEach(() => vi.unstubAllGlobals());

const STATUS = {
  currency: "USD", spend: { day: "1.5", month: "12.25" },
  banners: [{ level: "error", kind: "budget_hard",
    message: "The daily budget of API key 'ci' reached its hard limit (2 USD)." }],
  payment: { state: "ok", message: "", grace_until: null }, stripe: null,
};
const SPEND = { currency: "USD", group_by: ["day", "model"], rows: [
  { day: "2026-11-02", model: "chat-a", amount: "1.25", amount_display: "1.25", list_amount: "1.25", quantity: 10, lines: 2 },
  { day: "2026-11-02", model: "chat-b", amount: "0.5", amount_display: "0.50", list_amount: "0.5", quantity: 3, lines: 1 },
  { day: "2026-11-01", model: "chat-a", amount: "2", amount_display: "2.00", list_amount: "2", quantity: 4, lines: 1 },
] };
const INVOICE = { id: "in_1", number: "ACME-0001", status: "paid", currency: "USD", amount_due: 1234,
  amount_paid: 1234, total: 1234, hosted_invoice_url: null, invoice_pdf: "https://pay.stripe.test/in_1.pdf",
  period_start: null, period_end: null, lines: [{ id: "il_1", description: "Potluck usage", amount: 1234, quantity: 1234 }] };

describe("billing helpers", () => {
  it("makes one chart point per day with every model", () => {
    const { points, models } = spendByDay(SPEND.rows);
    expect(models).toEqual(["chat-a", "chat-b"]);
    expect(points).toEqual([{ day: "2026-11-01", "chat-a": 2, "chat-b": 0 },
      { day: "2026-11-02", "chat-a": 1.25, "chat-b": 0.5 }]);
  });

  it("shows Stripe's minor units in major units", () => {
    expect(minorToText(1234)).toBe("12.34");
    expect(minorToText(5)).toBe("0.05");
    expect(minorToText(500, 0)).toBe("500");
  });
});

describe("Billing page", () => {
  it("shows the banner, spend, budgets, invoices, and hides the operator report on 403", async () => {
    const calls = fakeServer((call) => {
      if (call.url.startsWith("/api/billing/status")) return { body: STATUS };
      if (call.url.startsWith("/api/billing/spend")) return { body: SPEND };
      if (call.url.startsWith("/api/billing/budgets")) return { body: [] };
      if (call.url.startsWith("/api/billing/invoices")) return { body: [INVOICE] };
      return { status: 403, body: { detail: "only a signed-in superuser (an operator) may do this" } };
    });
    renderPage(<Billing />);
    expect(await screen.findByRole("alert")).toHaveTextContent("reached its hard limit");
    expect(await screen.findByText("ACME-0001")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Download PDF" })).toHaveAttribute(
      "href", "https://pay.stripe.test/in_1.pdf");
    expect(screen.getByText("No budgets")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "CSV" }).getAttribute("href")).toContain("format=csv");
    await waitFor(() => expect(calls.some((c) => c.url.startsWith("/api/billing/report"))).toBe(true));
    expect(screen.queryByText(/Cost vs revenue/)).toBeNull();
  });

  it("adds a budget and shows the server's field error", async () => {
    const calls = fakeServer((call) => {
      if (call.method === "POST") return { status: 400, body: { soft_limit: ["soft_limit is above hard_limit"] } };
      if (call.url.startsWith("/api/billing/status")) return { body: { ...STATUS, banners: [] } };
      if (call.url.startsWith("/api/billing/spend")) return { body: { ...SPEND, rows: [] } };
      if (call.url.startsWith("/api/billing/budgets")) return { body: [] };
      if (call.url.startsWith("/api/billing/invoices")) return { body: [] };
      return { status: 403, body: { detail: "no" } };
    });
    renderPage(<Billing />);
    await userEvent.type(await screen.findByLabelText("Soft limit (alert)"), "5");
    await userEvent.type(screen.getByLabelText("Hard limit (refuse)"), "2");
    await userEvent.click(screen.getByRole("button", { name: "Add budget" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("soft_limit is above hard_limit");
    expect(calls.find((c) => c.method === "POST")!.body).toEqual(
      { period: "month", soft_limit: "5", hard_limit: "2" });
  });

  it("says when billing is not licensed", async () => {
    fakeServer(() => ({ status: 403, body: { detail: "metered billing needs an enterprise licence" } }));
    renderPage(<Billing />);
    expect(await screen.findByText("Metered billing is not licensed")).toBeInTheDocument();
  });
});

describe("Invoices", () => {
  it("lists lines in major units", () => {
    renderPage(<Invoices invoices={[INVOICE]} />);
    expect(screen.getByText("Potluck usage: 12.34 USD")).toBeInTheDocument();
  });
});
