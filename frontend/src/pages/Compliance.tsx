// SPDX-License-Identifier: Apache-2.0
/** Compliance (enterprise): profiles, variants with their model cards, and the audit log. */
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import { ago, ErrorMessage, EmptyState, Section } from "../components/ui";

export interface DetectorActions { request: string; response: string }
export interface TopicRule {
  id: string; title: string; direction: string; action: string; patterns: string[]; message: string;
}
export interface ProfileSpec {
  title: string; description?: string; detectors: Record<string, DetectorActions>;
  topics: TopicRule[]; disclaimer: string; retention: { keep_content: boolean; days: number };
  hold_back_chars?: number;
}
export interface Profile {
  id: string | null; key: string; based_on: string; builtin: boolean; version: number;
  spec: ProfileSpec; updated_at: string | null;
}
export interface Score { rate?: number; cases?: number; threshold: number; ratio?: number;
  candidate?: number; base?: number }
export interface FailingCase { id: string; checks: Record<string, boolean>; error: string }
export interface VariantCard {
  id: string; name: string; state: string; candidate_name: string; profile: string;
  profile_version: number; base: string; adapter: string | null; fine_tune_job: string | null;
  created_at: string; published_at: string | null; error: string;
  card: { passed?: boolean; scores?: Record<string, Score>; failed_thresholds?: string[];
    suite?: { version: string; cases: number; harness: string };
    failing_cases?: FailingCase[]; evaluated_at?: string };
}
export interface AuditEntry {
  chain: string; seq: number; created_at: string; kind: string; action: string; actor: string;
  target: string; data: Record<string, unknown>; entry_hash: string;
}
interface AuditPage { chain: string; size: number; head_hash: string; data: AuditEntry[];
  next_before_seq: number | null }

/** A profile as a compliance officer reads it, with a JSON editor for admins. */
export function ProfileView({ profile }: { profile: Profile }) {
  const client = useQueryClient();
  const [draft, setDraft] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (text: string) => api<Profile>(`/api/compliance/profiles/${profile.key}`, {
      method: "PUT", body: { spec: JSON.parse(text), based_on: profile.based_on } }),
    onSuccess: async () => {
      setDraft(null);
      await client.invalidateQueries({ queryKey: ["compliance-profiles"] });
    },
  });
  const { spec } = profile;
  return (
    <Section title={`${profile.key}: ${spec.title}`} actions={
      <span className="muted">{profile.builtin ? "built-in (copied on first use)"
        : `version ${profile.version}, edited ${ago(profile.updated_at)}`}</span>}>
      {spec.description ? <p>{spec.description}</p> : null}
      <table>
        <caption>Detectors</caption>
        <thead><tr><th scope="col">Identifier</th><th scope="col">In prompts</th>
          <th scope="col">In answers</th></tr></thead>
        <tbody>{Object.entries(spec.detectors).map(([kind, a]) => (
          <tr key={kind}><td>{kind}</td><td>{a.request}</td><td>{a.response}</td></tr>))}
        </tbody>
      </table>
      {spec.topics.length ? (
        <table>
          <caption>Topic rules</caption>
          <thead><tr><th scope="col">Rule</th><th scope="col">Where</th><th scope="col">Action</th>
            <th scope="col">Matches</th></tr></thead>
          <tbody>{spec.topics.map((t) => (
            <tr key={t.id}><td title={t.message}>{t.title} <code>{t.id}</code></td>
              <td>{t.direction}</td><td>{t.action}</td><td>{t.patterns.join(" | ")}</td></tr>))}
          </tbody>
        </table>
      ) : null}
      <dl className="facts">
        <div><dt>Disclaimer</dt><dd>{spec.disclaimer || "none"}</dd></div>
        <div><dt>Retention</dt><dd>{spec.retention.days} days; content
          {spec.retention.keep_content ? " kept" : " not kept (hashes only)"}</dd></div>
      </dl>
      {draft === null ? (
        <button type="button" onClick={() => setDraft(JSON.stringify(spec, null, 2))}>
          Edit as JSON</button>
      ) : (
        <form onSubmit={(e) => { e.preventDefault(); save.mutate(draft); }}>
          <label htmlFor={`spec-${profile.key}`}>Profile {profile.key} (JSON)</label>
          <textarea id={`spec-${profile.key}`} rows={16} value={draft}
            onChange={(e) => setDraft(e.target.value)} />
          <ErrorMessage error={save.error} />
          <button type="submit" disabled={save.isPending}>Save</button>
          <button type="button" onClick={() => setDraft(null)}>Cancel</button>
        </form>
      )}
    </Section>
  );
}

function scoreText(name: string, score: Score): string {
  if (score.ratio !== undefined) {
    return `${name}: ratio ${score.ratio.toFixed(3)} (at most ${score.threshold})`;
  }
  return `${name}: ${((score.rate ?? 0) * 100).toFixed(0)}% of ${score.cases} cases `
    + `(needs ${(score.threshold * 100).toFixed(0)}%)`;
}

/** A variant and its model card: gate scores, suite, base, adapter, failing cases. */
export function VariantCardView({ variant }: { variant: VariantCard }) {
  const card = variant.card;
  return (
    <Section title={variant.name} actions={<span className={`state ${variant.state}`}>
      {variant.state}</span>}>
      <dl className="facts">
        <div><dt>Profile</dt><dd>{variant.profile} (version {variant.profile_version})</dd></div>
        <div><dt>Base</dt><dd>{variant.base}</dd></div>
        <div><dt>Adapter</dt><dd>{variant.adapter ?? "none (guardrails on the base)"}</dd></div>
        <div><dt>Suite</dt><dd>{card.suite ? `${card.suite.version}, ${card.suite.cases} cases, `
          + card.suite.harness : "not evaluated yet"}</dd></div>
        <div><dt>Published</dt><dd>{variant.published_at ? ago(variant.published_at) : "no"}</dd></div>
      </dl>
      {variant.error ? <p className="error">{variant.error}</p> : null}
      {card.scores ? (
        <ul aria-label="Gate scores">{Object.entries(card.scores).map(([name, score]) => (
          <li key={name}>{scoreText(name, score)}</li>))}</ul>
      ) : null}
      {card.failing_cases?.length ? (
        <>
          <h3>Failing cases</h3>
          <ul aria-label="Failing cases">{card.failing_cases.map((c) => (
            <li key={c.id}><code>{c.id}</code>: {Object.entries(c.checks)
              .filter(([, ok]) => !ok).map(([k]) => k).join(", ") || c.error}</li>))}</ul>
        </>
      ) : null}
    </Section>
  );
}

function summarize(entry: AuditEntry): string {
  const data = entry.data;
  if (entry.kind === "request") {
    const detections = Object.entries((data.detections ?? {}) as Record<string, number>)
      .map(([k, n]) => `${k}×${n}`).join(", ");
    return `${data.status} ${data.outcome}${data.blocked ? `, blocked by ${data.blocked}` : ""}`
      + (detections ? `; ${detections}` : "");
  }
  return Object.entries(data).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ");
}

export function AuditLog() {
  const [before, setBefore] = useState<number | null>(null);
  const page = useQuery({
    queryKey: ["audit-entries", before],
    queryFn: () => api<AuditPage>("/api/audit/entries", { query: { limit: 50,
      before_seq: before ?? undefined } }),
  });
  return (
    <Section title="Audit log" actions={<a href="/api/audit/export" download>Export (JSON lines)</a>}>
      <ErrorMessage error={page.error} />
      {page.data ? (
        <>
          <p className="muted">Chain {page.data.chain}: {page.data.size} entries, head
            <code> {page.data.head_hash.slice(0, 16)}…</code>. Verify an export offline with
            <code> potluck audit verify FILE --checkpoint CHECKPOINT</code>.</p>
          {page.data.data.length ? (
            <table>
              <thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Action</th>
                <th scope="col">Who</th><th scope="col">What</th><th scope="col">Details</th></tr></thead>
              <tbody>{page.data.data.map((e) => (
                <tr key={e.seq}><td>{e.seq}</td><td>{ago(e.created_at)}</td><td>{e.action}</td>
                  <td>{e.actor || "—"}</td><td>{e.target || "—"}</td><td>{summarize(e)}</td></tr>))}
              </tbody>
            </table>
          ) : <EmptyState title="Nothing recorded yet" />}
          {page.data.next_before_seq ? (
            <button type="button" onClick={() => setBefore(page.data!.next_before_seq)}>
              Older entries</button>) : null}
        </>
      ) : null}
    </Section>
  );
}

export function Compliance() {
  const profiles = useQuery({ queryKey: ["compliance-profiles"],
    queryFn: () => api<{ data: Profile[] }>("/api/compliance/profiles") });
  const variants = useQuery({ queryKey: ["compliance-variants"],
    queryFn: () => api<{ data: VariantCard[] }>("/api/compliance/variants") });
  const missing = profiles.error instanceof ApiError && [403, 404].includes(profiles.error.status);
  if (missing) {
    return (
      <>
        <h1>Compliance</h1>
        <EmptyState title="Compliance variants are not available here">
          They are part of the enterprise edition and need a licence that grants the
          “compliance” feature (an operator installs it with <code>potluck license install</code>).
        </EmptyState>
        <ErrorMessage error={profiles.error} />
      </>
    );
  }
  return (
    <>
      <h1>Compliance</h1>
      <ErrorMessage error={profiles.error} />
      <h2>Variants</h2>
      {variants.data && !variants.data.data.length ? (
        <EmptyState title="No compliance variant yet">
          Build one with <code>potluck compliance build finance --base potluck-demo</code>.
        </EmptyState>
      ) : variants.data?.data.map((v) => <VariantCardView key={v.id} variant={v} />)}
      <h2>Profiles</h2>
      {profiles.data?.data.map((p) => <ProfileView key={p.key} profile={p} />)}
      {profiles.error ? null : <AuditLog />}
    </>
  );
}
