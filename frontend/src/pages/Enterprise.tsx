// SPDX-License-Identifier: Apache-2.0
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import type { Extensions, Panel } from "../api/types";
import { ErrorMessage, Section } from "../components/ui";

export function show(value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (Array.isArray(value)) return value.length ? value.map(show).join(", ") : "none";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** An extension's panel: its description and what its API path answers. */
function PanelView({ panel }: { panel: Panel }) {
  const data = useQuery({ queryKey: ["panel", panel.key], enabled: Boolean(panel.api_path),
    queryFn: () => api<Record<string, unknown>>(panel.api_path) });
  return (
    <Section title={panel.title}>
      {panel.description ? <p>{panel.description}</p> : null}
      <ErrorMessage error={data.error} />
      {data.data ? (
        <dl className="facts">{Object.entries(data.data).map(([k, v]) => (
          <div key={k}><dt>{k.replace(/_/g, " ")}</dt>
            <dd>{show(v)}</dd></div>
        ))}</dl>
      ) : null}
    </Section>
  );
}

export function Enterprise() {
  const ext = useQuery({ queryKey: ["extensions"], queryFn: () => api<Extensions>("/api/extensions") });
  return (
    <>
      <h1>Enterprise</h1>
      <ErrorMessage error={ext.error} />
      {ext.data && !ext.data.panels.length ? (
        <Section title="The enterprise edition">
          <p>This is the community edition: complete for one team. The enterprise edition adds
            single sign-on (OIDC, SAML), metered billing, contribution credits,
            compliance-tuned variants and an audit log.</p>
          <p>To enable it, get a licence key from the Potluck team and install it with
            <code> potluck license install &lt;file&gt;</code>; its panels then appear here.</p>
        </Section>
      ) : ext.data?.panels.map((p) => <PanelView key={p.key} panel={p} />)}
      {ext.data?.features.length ? (
        <Section title="Licensed features"><ul>{ext.data.features.map((f) => <li key={f.key}>{f.title}</li>)}</ul></Section>
      ) : null}
    </>
  );
}
