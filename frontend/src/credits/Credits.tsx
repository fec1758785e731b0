// SPDX-License-Identifier: Apache-2.0
/** The contribution credits page (enterprise): the signed-in contributor's wallet
 * (balance, vesting, history, linked accounts, how to earn), the approval queue of the
 * repositories they maintain, the community pool with its last distributions, and the
 * leaderboard. Every call is /api/credits/...; a 403 says the feature is not licensed. */
import { useState, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api } from "../api/client";
import { CopyButton, EmptyState, ErrorMessage, Section } from "../components/ui";
import { minorToText } from "../billing/spend";
import type { CreditGrant, LeaderRow, Pool, Wallet } from "./types";

/** Credits with thousands separators ("12,500"); negative balances keep their sign. */
export function creditsText(value: number): string {
  return value.toLocaleString("en-US");
}

const STATUS_TEXT: Record<string, string> = {
  awaiting_approval: "waits for a maintainer", refused: "no credit", rejected: "rejected",
  granted: "vesting", vested: "in your wallet", reverted: "clawed back (reverted)",
};

export function LinkAccount() {
  const client = useQueryClient();
  const [forge, setForge] = useState("github");
  const [login, setLogin] = useState("");
  const token = useMutation({
    mutationFn: () => api<{ token: string; instructions: string }>("/api/credits/link/token",
      { method: "POST", body: { forge, login } }),
  });
  const verify = useMutation({
    mutationFn: () => api("/api/credits/link/verify", { method: "POST", body: { forge, login } }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["credits"] }),
  });
  return (
    <div className="link-account">
      <p>
        Sign in to your forge: <a href={`/api/credits/link/${forge}/start`}>Link with {forge === "github" ? "GitHub" : "GitLab"}</a>,
        or prove it with a one-time token.
      </p>
      <form onSubmit={(e) => { e.preventDefault(); token.mutate(); }}>
        <label>Forge{" "}
          <select value={forge} onChange={(e) => setForge(e.target.value)}>
            <option value="github">GitHub</option><option value="gitlab">GitLab</option>
          </select>
        </label>{" "}
        <label>Your login <input value={login} onChange={(e) => setLogin(e.target.value)} required /></label>{" "}
        <button type="submit">Get a token</button>
      </form>
      {token.data ? (
        <div role="status">
          <p>{token.data.instructions}</p>
          <p><code>{token.data.token}</code> <CopyButton text={token.data.token} /></p>
          <button type="button" onClick={() => verify.mutate()}>I have placed it: verify</button>
        </div>
      ) : null}
      {verify.isSuccess ? <p role="status">Linked.</p> : null}
      {token.error ? <ErrorMessage error={token.error} /> : null}
      {verify.error ? <ErrorMessage error={verify.error} /> : null}
    </div>
  );
}

export function WalletView({ wallet }: { wallet: Wallet }) {
  return (
    <>
      <p className="balance">
        <strong>{creditsText(wallet.balance)} credits</strong> (worth {wallet.balance_value} {wallet.currency} at
        list price){wallet.balance < 0 ? " — a clawback is being recovered from your next grants" : ""}.
        {" "}Vesting: {creditsText(wallet.vesting)}; waiting for a maintainer: {creditsText(wallet.awaiting_approval)}.
      </p>
      <p className="hint">{wallet.unit}.{wallet.organization
        ? <> Your organization <code>{wallet.organization.slug}</code> spends them on inference and fine-tuning.</>
        : null}</p>
      <h3>Linked accounts</h3>
      {wallet.linked_accounts.length ? (
        <ul>{wallet.linked_accounts.map((a) => (
          <li key={`${a.forge}:${a.login}`}>{a.forge}: {a.login} (by {a.linked_by})</li>))}</ul>
      ) : <LinkAccount />}
      <h3>Your patches</h3>
      {wallet.grants.length ? <GrantsTable grants={wallet.grants} /> : <p>No merged patches yet.</p>}
      <h3>History</h3>
      {wallet.history.length ? (
        <table>
          <thead><tr><th>When</th><th>What</th><th>Credits</th></tr></thead>
          <tbody>{wallet.history.map((h) => (
            <tr key={h.transaction}><td>{h.posted_at.slice(0, 16).replace("T", " ")}</td>
              <td>{h.memo || h.kind}</td><td>{h.amount > 0 ? "+" : ""}{creditsText(h.amount)}</td></tr>
          ))}</tbody>
        </table>
      ) : <p>Nothing yet.</p>}
    </>
  );
}

export function GrantsTable({ grants, actions }: {
  grants: CreditGrant[]; actions?: (g: CreditGrant) => ReactNode;
}) {
  return (
    <table>
      <thead><tr><th>Patch</th><th>Author</th><th>Credits</th><th>State</th>{actions ? <th>Decide</th> : null}</tr></thead>
      <tbody>{grants.map((g) => (
        <tr key={g.id}>
          <td>{g.url ? <a href={g.url}>{g.repository}#{g.number}</a> : `${g.repository}#${g.number}`} {g.title}</td>
          <td>{g.login}</td><td>{creditsText(g.amount)}</td>
          <td>{STATUS_TEXT[g.status] ?? g.status}{g.reason ? ` (${g.reason})` : ""}</td>
          {actions ? <td>{actions(g)}</td> : null}
        </tr>
      ))}</tbody>
    </table>
  );
}

export function ApprovalQueue({ grants }: { grants: CreditGrant[] }) {
  const client = useQueryClient();
  const decide = useMutation({
    mutationFn: ({ id, decision }: { id: number; decision: string }) =>
      api(`/api/credits/approvals/${id}`, { method: "POST", body: { decision } }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["credits"] }),
  });
  if (!grants.length) return <EmptyState title="Nothing waits for your approval" />;
  return (
    <>
      <GrantsTable grants={grants} actions={(g) => (
        <>
          <button type="button" onClick={() => decide.mutate({ id: g.id, decision: "approve" })}
            aria-label={`Approve ${g.repository}#${g.number}`}>Approve</button>{" "}
          <button type="button" onClick={() => decide.mutate({ id: g.id, decision: "reject" })}
            aria-label={`Reject ${g.repository}#${g.number}`}>Reject</button>
        </>
      )} />
      {decide.error ? <ErrorMessage error={decide.error} /> : null}
    </>
  );
}

export function PoolView({ pool }: { pool: Pool }) {
  const money = (v: number) => `${minorToText(v, pool.minor_unit_exponent)} ${pool.currency}`;
  return (
    <>
      <p>The community pool holds <strong>{money(pool.balance)}</strong>: a share of enterprise
        revenue, paid out each period in proportion to the credits vested in it.</p>
      {pool.distributions.length ? (
        <table>
          <thead><tr><th>Period</th><th>Pool</th><th>Paid out</th><th>Carried over</th><th>People</th></tr></thead>
          <tbody>{pool.distributions.map((d) => (
            <tr key={d.period_start}><td>{d.period_start} to {d.period_end}</td><td>{money(d.pool)}</td>
              <td>{money(d.distributed)}</td><td>{money(d.residue)}</td><td>{d.people}</td></tr>
          ))}</tbody>
        </table>
      ) : <p>No distribution yet.</p>}
    </>
  );
}

export function Leaderboard({ rows }: { rows: LeaderRow[] }) {
  if (!rows.length) return <EmptyState title="No credits vested yet" />;
  return (
    <ol className="leaderboard">{rows.map((r) => (
      <li key={r.accounts.join(",")}>{r.accounts.join(", ")}: {creditsText(r.credits)} credits,
        {" "}{r.patches} patch{r.patches === 1 ? "" : "es"}</li>
    ))}</ol>
  );
}

export function Credits() {
  const wallet = useQuery({ queryKey: ["credits", "wallet"],
    queryFn: () => api<Wallet>("/api/credits/wallet") });
  const approvals = useQuery({ queryKey: ["credits", "approvals"], enabled: wallet.isSuccess,
    queryFn: () => api<CreditGrant[]>("/api/credits/approvals") });
  const pool = useQuery({ queryKey: ["credits", "pool"], enabled: wallet.isSuccess,
    queryFn: () => api<Pool>("/api/credits/pool") });
  const board = useQuery({ queryKey: ["credits", "leaderboard"], enabled: wallet.isSuccess,
    queryFn: () => api<LeaderRow[]>("/api/credits/leaderboard") });
  if (wallet.error) {
    return wallet.error instanceof ApiError && wallet.error.status === 403
      ? <EmptyState title="Contribution credits are not available here">
          {wallet.error.message}</EmptyState>
      : <ErrorMessage error={wallet.error} />;
  }
  if (!wallet.data) return <p className="loading" role="status">Loading credits…</p>;
  return (
    <>
      <h1>Credits</h1>
      <Section title="Your wallet"><WalletView wallet={wallet.data} /></Section>
      <Section title="How to earn">
        <p>{wallet.data.how_to_earn}</p>
        {wallet.data.repositories.length ? (
          <ul>{wallet.data.repositories.map((r) => (
            <li key={`${r.forge}:${r.full_name}`}>{r.full_name} ({r.forge}): {creditsText(r.base_credits)} credits a
              patch{Object.keys(r.label_weights).length ? `, labels ${Object.entries(r.label_weights)
                .map(([label, w]) => `${label} ×${w}`).join(", ")}` : ""}; vests after {r.hold_days} days</li>
          ))}</ul>
        ) : null}
      </Section>
      {approvals.data?.length ? (
        <Section title="Approval queue"><ApprovalQueue grants={approvals.data} /></Section>
      ) : null}
      <Section title="Community pool">
        {pool.data ? <PoolView pool={pool.data} /> : <ErrorMessage error={pool.error} />}
      </Section>
      <Section title="Leaderboard">
        {board.data ? <Leaderboard rows={board.data} /> : <ErrorMessage error={board.error} />}
      </Section>
    </>
  );
}
