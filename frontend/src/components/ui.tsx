// SPDX-License-Identifier: Apache-2.0
/** Small shared pieces: empty states, errors, progress, copy buttons. */
import { useState, type ReactNode } from "react";
import { ApiError } from "../api/client";

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty" role="status">
      <strong>{title}</strong>
      {children ? <p>{children}</p> : null}
    </div>
  );
}

export function ErrorMessage({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  return <p role="alert" className="error">{message}</p>;
}

/** The message of a field's error, shown under its input. */
export function fieldError(error: unknown, field: string): string | undefined {
  return error instanceof ApiError ? error.fields[field] : undefined;
}

export function FieldError({ id, message }: { id: string; message?: string }) {
  if (!message) return null;
  return <span id={id} className="field-error" role="alert">{message}</span>;
}

export function Busy({ label }: { label: string }) {
  return <span className="busy" role="progressbar" aria-label={label}>{label}…</span>;
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button type="button" onClick={async () => {
      try {
        await navigator.clipboard.writeText(text);
        setCopied(true);
      } catch {
        setCopied(false);
      }
    }}>
      {copied ? "Copied" : label}
    </button>
  );
}

export function Section({ title, children, actions }: {
  title: string; children: ReactNode; actions?: ReactNode;
}) {
  return (
    <section className="card" aria-label={title}>
      <header className="card-head"><h2>{title}</h2>{actions}</header>
      {children}
    </section>
  );
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function ago(iso: string | number | null | undefined): string {
  if (iso == null) return "never";
  const when = typeof iso === "number" ? iso * 1000 : Date.parse(iso);
  const seconds = Math.round((Date.now() - when) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}
