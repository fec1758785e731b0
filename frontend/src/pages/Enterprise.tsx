// SPDX-License-Identifier: Apache-2.0
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import type { Extensions, Panel } from "../api/types";
import { ErrorMessage, Loadable, Loading, Section } from "../components/ui";
import { LicencePanel } from "../licence/LicencePanel";

export function show(value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (Array.isArray(value)) return value.length ? value.map(show).join(", ") : "none";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") {
    const named = value as { title?: unknown; name?: unknown; key?: unknown };
    const label = named.title ?? named.name ?? named.key;
    return typeof label === "string" ? label : JSON.stringify(value);
  }
  return String(value);
}

/** A field name as a label, in the console's one spelling ("licence", as the page title). */
export function factLabel(key: string): string {
  return key.replace(/_/g, " ").replace(/\blicen[cs]e\b/gi, (w) => (w[0] === "L" ? "Licence" : "licence"));
}

/** An extension's panel: its description and what its API path answers. */
function PanelView({ panel }: { panel: Panel }) {
  const data = useQuery({ queryKey: ["panel", panel.key], enabled: Boolean(panel.api_path),
    queryFn: () => api<Record<string, unknown>>(panel.api_path) });
  return (
    <Section title={panel.title}>
      {panel.description ? <p>{panel.description}</p> : null}
      {panel.api_path ? (
        <Loadable query={data} label={panel.title.toLowerCase()}>
          {(facts) => (
            <dl className="facts">{Object.entries(facts).map(([k, v]) => (
              <div key={k}><dt>{factLabel(k)}</dt><dd>{show(v)}</dd></div>
            ))}</dl>
          )}
        </Loadable>
      ) : null}
    </Section>
  );
}

export function Enterprise() {
  const ext = useQuery({ queryKey: ["extensions"], queryFn: () => api<Extensions>("/api/extensions") });
  return (
    <>
      <h1>Enterprise</h1>
      {ext.isPending ? <Loading label="extensions" /> : null}
      <ErrorMessage error={ext.error} retry={() => { void ext.refetch(); }} />
      {ext.data && !ext.data.panels.length ? (
        <Section title="The enterprise edition">
          <p>This is the community edition: complete for one team. The enterprise edition adds
            single sign-on (OIDC, SAML), metered billing, contribution credits,
            compliance-tuned variants and an audit log.</p>
          <p>To enable it, get a licence from the Potluck team and install it on the server
            with <code>potluck license install &lt;file&gt;</code>; its panels then appear here.</p>
        </Section>
      ) : ext.data?.panels.map((p) => (p.key === "licence"
        ? <LicencePanel key={p.key} /> : <PanelView key={p.key} panel={p} />))}
      {ext.data?.features.length ? (
        <Section title="Licensed features"><ul>{ext.data.features.map((f) => <li key={f.key}>{f.title}</li>)}</ul></Section>
      ) : null}
    </>
  );
}
