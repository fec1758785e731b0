// SPDX-License-Identifier: Apache-2.0
/**
 * The enterprise licence on the Enterprise page: this installation's id, the licence
 * (features, seats used of granted, expiry, grace), warnings 30 and 7 days before expiry,
 * installing a licence (pasted or uploaded, with the verifier's own reason on refusal),
 * the store's buy/upgrade link (with the installation id and seats in use), and online
 * renewal. Only an operator (a superuser) installs; everyone who may read sees the rest.
 */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import type { Session } from "../api/types";
import { Busy, CopyButton, Loadable, Section } from "../components/ui";
import type { LicenceStatus, RenewalOutcome } from "./types";

function day(value: string | null): string {
  return value ? value.slice(0, 10) : "—";
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The expiry warning, if any: a notice from 30 days out, an alert from 7. */
export function ExpiryWarning({ status }: { status: LicenceStatus }) {
  const left = status.days_left ?? 0;
  switch (status.expiry_notice) {
    case "30_days":
      return (
        <p className="notice" role="status" data-testid="expiry-warning">
          The licence expires in {plural(left, "day")}, on {day(status.expires_at)}: renew it
          before then.
        </p>
      );
    case "7_days":
      return (
        <p className="notice error" role="alert" data-testid="expiry-warning">
          Only {plural(left, "day")} left: the licence expires on {day(status.expires_at)}.
          Install its renewal now.
        </p>
      );
    case "grace":
      return (
        <p className="notice error" role="alert" data-testid="expiry-warning">
          The licence expired on {day(status.expires_at)}. Enterprise features stay on until
          the grace period ends on {day(status.grace_ends_at)}.
        </p>
      );
    case "expired":
      return (
        <p className="notice error" role="alert" data-testid="expiry-warning">
          The licence and its grace period have ended: enterprise features are off (their data
          is kept). Install a new licence.
        </p>
      );
    default:
      return null;
  }
}

/** The server's warnings, less the expiry warning that the banner above already gives. */
function OtherWarnings({ status }: { status: LicenceStatus }) {
  const expiry = /^the licence (expires|expired)/;
  const shown = status.expiry_notice ? status.warnings.filter((w) => !expiry.test(w))
    : status.warnings;
  if (!shown.length) return null;
  return (
    <ul aria-label="Licence warnings">{shown.map((w) => <li key={w}>{w}</li>)}</ul>
  );
}

function Facts({ status }: { status: LicenceStatus }) {
  const rows: [string, string][] = !status.installed ? [
    ["State", "none (the community edition)"],
    ["Seats", `${status.seats_used} in use`],
  ] : [
    ["Licence", status.license_id ?? "—"],
    ["Licensee", status.licensee ?? "—"],
    ["State", status.state],
    ["Seats", status.seats
      ? `${status.seats_used} used of ${status.seats} (adding members stops at ${status.seats_limit})`
      : `${status.seats_used} in use`],
    ["Expires", day(status.expires_at)],
    ["Grace", status.grace_days !== null
      ? `${plural(status.grace_days, "day")}, until ${day(status.grace_ends_at)}` : "—"],
    ["Bound to", status.bound_to ?? "any installation"],
  ];
  return (
    <dl className="facts">
      {rows.map(([label, value]) => <div key={label}><dt>{label}</dt><dd>{value}</dd></div>)}
    </dl>
  );
}

function Features({ status }: { status: LicenceStatus }) {
  if (!status.features.length) return <p>No enterprise feature is licensed.</p>;
  return (
    <ul aria-label="Licensed features">
      {status.features.map((f) => (
        <li key={f.key} data-feature={f.key}>
          {f.title} (<code>{f.key}</code>): <strong>{f.enabled ? "on" : "off"}</strong>
        </li>
      ))}
    </ul>
  );
}

/** Paste or upload a licence file; the server's refusal is shown word for word. */
export function InstallLicence({ onInstalled }: { onInstalled: (s: LicenceStatus) => void }) {
  const [text, setText] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [picker, setPicker] = useState(0);  // a new key empties the file input
  const install = useMutation({
    mutationFn: () => {
      if (file) {
        const form = new FormData();
        form.append("license", file);
        return api<LicenceStatus>("/api/license", { method: "POST", form });
      }
      return api<LicenceStatus>("/api/license", { method: "POST", body: { license: text } });
    },
    onSuccess: (status) => {
      setText("");
      setFile(null);
      setPicker((n) => n + 1);
      onInstalled(status);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    install.mutate();
  };
  const error = install.error;
  const reason = error instanceof ApiError ? (error.fields.license ?? error.message)
    : error ? String(error) : null;
  return (
    <form onSubmit={submit} aria-label="Install a licence">
      <label htmlFor="licence-text">Paste the licence</label>
      <textarea id="licence-text" rows={6} value={text} disabled={Boolean(file)}
        placeholder="-----BEGIN POTLUCK LICENSE-----" spellCheck={false}
        aria-invalid={reason ? true : undefined} aria-describedby="licence-reason"
        onChange={(e) => setText(e.target.value)} />
      <label htmlFor="licence-file">or upload the file</label>
      <input id="licence-file" key={picker} type="file" accept=".license,.txt,text/plain"
        onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      <div className="send-row">
        <button type="submit" disabled={install.isPending || (!file && !text.trim())}>
          Install licence
        </button>
        {install.isPending ? <Busy label="Verifying" /> : null}
      </div>
      {reason ? (
        <p id="licence-reason" role="alert" className="error" data-testid="licence-refused">
          Not installed: {reason}
        </p>
      ) : null}
      {install.isSuccess ? (
        <p role="status" data-testid="licence-installed">
          Installed licence {install.data.license_id} for {install.data.licensee}.
        </p>
      ) : null}
    </form>
  );
}

function Renewal({ status, operator }: { status: LicenceStatus; operator: boolean }) {
  const client = useQueryClient();
  const renew = useMutation({
    mutationFn: () => api<RenewalOutcome>("/api/license/renew", { method: "POST" }),
    onSettled: () => { void client.invalidateQueries({ queryKey: ["licence"] }); },
  });
  if (!status.online_renewal.enabled) {
    return <p>Online renewal is off: paste each renewed licence here.</p>;
  }
  return (
    <div>
      <p>Online renewal: the server fetches the renewed licence from the store before expiry.
        {status.online_renewal.checked_at
          ? ` Last check ${day(status.online_renewal.checked_at)}: ${status.online_renewal.outcome}.`
          : " Not checked yet."}</p>
      {operator && status.installed ? (
        <button type="button" className="secondary" disabled={renew.isPending}
          onClick={() => renew.mutate()}>Check for a renewal now</button>
      ) : null}
      {renew.data ? <p role="status">{renew.data.status}: {renew.data.detail}</p> : null}
      {renew.error ? <p role="alert" className="error">{renew.error.message}</p> : null}
    </div>
  );
}

export function LicencePanel() {
  const client = useQueryClient();
  const licence = useQuery({ queryKey: ["licence"],
    queryFn: () => api<LicenceStatus>("/api/license") });
  const session = useQuery({ queryKey: ["session"], queryFn: () => api<Session>("/api/session") });
  const operator = Boolean(session.data?.user?.is_superuser);
  const installed = (status: LicenceStatus) => {
    client.setQueryData(["licence"], status);
    // Features switch on in this process at once: the navigation and panels follow.
    void client.invalidateQueries({ queryKey: ["extensions"] });
  };
  return (
    <Loadable query={licence} label="licence">
      {(status) => (
        <>
          <Section title="Licence" id="licence">
            <ExpiryWarning status={status} />
            <OtherWarnings status={status} />
            <p>
              This installation's id: <code data-testid="installation-id">{status.installation_id}</code>{" "}
              <CopyButton text={status.installation_id} label="Copy id" />
            </p>
            {status.installed ? null : (
              <p>No licence is installed: this is the community edition.</p>
            )}
            <Facts status={status} />
            <Features status={status} />
            {status.store_url ? (
              <p>
                <a href={status.store_url} data-testid="store-link">
                  {status.installed ? "Upgrade or renew in the store" : "Buy a licence or start a free trial"}
                </a>{" "}(for this installation, {plural(Math.max(1, status.seats_used), "seat")} in use)
              </p>
            ) : (
              <p>To buy a licence, give the store this installation's id and your seat count.</p>
            )}
          </Section>
          <Section title="Install a licence">
            {operator ? <InstallLicence onInstalled={installed} /> : (
              <p>A licence changes the whole installation: an operator (a superuser) installs it
                here or with <code>potluck license install FILE</code>.</p>
            )}
            <Renewal status={status} operator={operator} />
          </Section>
        </>
      )}
    </Loadable>
  );
}
