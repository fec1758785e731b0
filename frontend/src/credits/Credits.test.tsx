// SPDX-License-Identifier: Apache-2.0
import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeServer, renderPage } from "../test-utils";
import { Credits, creditsText } from "./Credits";

afterEach(() => vi.unstubAllGlobals());

const GRANT = { id: 7, repository: "github:potluck/potluck", number: 42, title: "Faster sampler",
  url: "https://github.test/potluck/potluck/pull/42", labels: ["perf"], login: "alice",
  amount: 5000, status: "vested", reason: "", merged_at: "2026-11-03T10:00:00Z",
  vests_at: "2026-11-03T10:00:00Z", vested_at: "2026-11-03T10:00:01Z" };
const WALLET = {
  unit: "1 credit = 0.001 of the currency's major unit at list price", currency: "USD",
  balance: -800, balance_value: "-0.8", vesting: 1000, awaiting_approval: 0,
  organization: { slug: "alice-credits", name: "alice@example.test (credits)" },
  linked_accounts: [{ forge: "github", login: "alice", linked_by: "oauth", linked_at: null }],
  grants: [GRANT, { ...GRANT, id: 8, number: 43, status: "reverted", amount: 1000 }],
  history: [{ transaction: 3, kind: "clawback", amount: -1000, memo: "reverted by github:potluck/potluck#44",
    posted_at: "2026-11-04T09:00:00Z" }],
  how_to_earn: "Link your GitHub or GitLab account, then get patches merged.",
  repositories: [{ forge: "github", full_name: "potluck/potluck", base_credits: 5000,
    label_weights: { security: "3" }, hold_days: 30, monthly_cap: 0 }],
};
const POOL = { currency: "USD", minor_unit_exponent: 2, balance: 12345, distributions: [
  { period_start: "2026-10-01", period_end: "2026-11-01", pool: 100000, distributed: 99999,
    residue: 1, credits_vested: 70000, people: 7 }] };
const WAITING = { ...GRANT, id: 9, number: 50, login: "newcomer", status: "awaiting_approval",
  reason: "first grant: waits for a maintainer", amount: 1000 };

describe("credits helpers", () => {
  it("writes credits with separators and keeps a debt's sign", () => {
    expect(creditsText(12500)).toBe("12,500");
    expect(creditsText(-800)).toBe("-800");
  });
});

describe("Credits page", () => {
  it("shows the wallet, a clawback being recovered, how to earn, the pool and the leaderboard", async () => {
    fakeServer((call) => {
      if (call.url.startsWith("/api/credits/wallet")) return { body: WALLET };
      if (call.url.startsWith("/api/credits/approvals")) return { body: [] };
      if (call.url.startsWith("/api/credits/pool")) return { body: POOL };
      if (call.url.startsWith("/api/credits/leaderboard")) {
        return { body: [{ accounts: ["github:alice"], credits: 5000, patches: 1 }] };
      }
      return { status: 404, body: { detail: "not found" } };
    });
    renderPage(<Credits />);
    const wallet = await screen.findByRole("region", { name: "Your wallet" });
    expect(wallet).toHaveTextContent("-800 credits");
    expect(wallet).toHaveTextContent("recovered from your next grants");
    expect(wallet).toHaveTextContent("alice-credits");
    expect(within(wallet).getByRole("link", { name: "github:potluck/potluck#42" })).toBeInTheDocument();
    expect(wallet).toHaveTextContent("clawed back (reverted)");
    expect(screen.getByRole("region", { name: "How to earn" })).toHaveTextContent("security ×3");
    expect(await screen.findByText("123.45 USD")).toBeInTheDocument();
    expect(screen.getByText("999.99 USD")).toBeInTheDocument();
    expect(await screen.findByText(/github:alice: 5,000 credits/)).toBeInTheDocument();
    expect(screen.queryByRole("region", { name: "Approval queue" })).toBeNull();
  });

  it("lets a maintainer approve a first-timer's grant", async () => {
    let decided: unknown = null;
    const calls = fakeServer((call) => {
      if (call.url.startsWith("/api/credits/wallet")) return { body: { ...WALLET, balance: 0, grants: [], history: [] } };
      if (call.url === "/api/credits/approvals/9" && call.method === "POST") {
        decided = call.body;
        return { body: { id: 9, status: "granted", amount: 1000 } };
      }
      if (call.url.startsWith("/api/credits/approvals")) return { body: decided ? [] : [WAITING] };
      if (call.url.startsWith("/api/credits/pool")) return { body: { ...POOL, distributions: [] } };
      if (call.url.startsWith("/api/credits/leaderboard")) return { body: [] };
      return { status: 404, body: {} };
    });
    renderPage(<Credits />);
    const queue = await screen.findByRole("region", { name: "Approval queue" });
    expect(queue).toHaveTextContent("newcomer");
    await userEvent.click(within(queue).getByRole("button", { name: "Approve github:potluck/potluck#50" }));
    await waitFor(() => expect(decided).toEqual({ decision: "approve" }));
    await waitFor(() => expect(screen.queryByRole("region", { name: "Approval queue" })).toBeNull());
    expect(calls.some((c) => c.method === "POST" && c.url === "/api/credits/approvals/9")).toBe(true);
  });

  it("links an account with a one-time token", async () => {
    let linked = false;
    fakeServer((call) => {
      if (call.url.startsWith("/api/credits/wallet")) {
        return { body: { ...WALLET, linked_accounts: linked ? WALLET.linked_accounts : [], balance: 0 } };
      }
      if (call.url === "/api/credits/link/token") {
        return { status: 201, body: { token: "potluck-link-0123456789abcdef0123456789abcdef",
          instructions: "Put this token in your forge profile's bio." } };
      }
      if (call.url === "/api/credits/link/verify") {
        linked = true;
        return { body: { forge: "github", login: "alice", linked: true } };
      }
      if (call.url.startsWith("/api/credits/approvals")) return { body: [] };
      if (call.url.startsWith("/api/credits/pool")) return { body: POOL };
      return { body: [] };
    });
    renderPage(<Credits />);
    await userEvent.type(await screen.findByLabelText("Your login"), "alice");
    await userEvent.click(screen.getByRole("button", { name: "Get a token" }));
    expect(await screen.findByText("potluck-link-0123456789abcdef0123456789abcdef")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "I have placed it: verify" }));
    expect(await screen.findByText("github: alice (by oauth)")).toBeInTheDocument();
  });

  it("says so when the feature is not licensed", async () => {
    fakeServer(() => ({ status: 403, body: { detail: "contribution credits need an enterprise licence" } }));
    renderPage(<Credits />);
    expect(await screen.findByText("Contribution credits are not available here")).toBeInTheDocument();
  });
});
