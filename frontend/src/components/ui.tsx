// SPDX-License-Identifier: Apache-2.0
/** Small shared pieces: loading, error and empty states, tables, confirmations, copy buttons. */
import { useEffect, useRef, useState, type ReactNode } from "react";
import type { UseQueryResult } from "@tanstack/react-query";
import { ApiError } from "../api/client";

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty" role="status">
      <strong>{title}</strong>
      {children ? <p>{children}</p> : null}
    </div>
  );
}

/** An error as the server said it, with a way to try again where that can help. */
export function ErrorMessage({ error, retry }: { error: unknown; retry?: () => void }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div role="alert" className="error-box">
      <p className="error">{message}</p>
      {retry ? <button type="button" className="secondary" onClick={retry}>Try again</button> : null}
    </div>
  );
}

export function Loading({ label }: { label: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {label}…
    </p>
  );
}

/**
 * A query's three states before its data: loading (a spinner, not bare headers that read
 * as "no data"), failed (the server's message and "Try again"), and empty (what to do).
 * A refresh that fails after data arrived keeps the data and says it may be stale.
 */
export function Loadable<T>({ query, label, isEmpty, empty, children }: {
  query: UseQueryResult<T>; label: string; isEmpty?: (data: T) => boolean;
  empty?: ReactNode; children: (data: T) => ReactNode;
}) {
  if (query.isPending) return <Loading label={label} />;
  if (query.isError && query.data === undefined) {
    return <ErrorMessage error={query.error} retry={() => { void query.refetch(); }} />;
  }
  const data = query.data as T;
  const stale = query.isError ? (
    <p role="alert" className="error">Could not refresh the {label}: {query.error.message}</p>
  ) : null;
  if (isEmpty?.(data) && empty) return <>{stale}{empty}</>;
  return <>{stale}{children(data)}</>;
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
    <button type="button" className="secondary" onClick={async () => {
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

export function Section({ title, children, actions, id }: {
  title: string; children: ReactNode; actions?: ReactNode; id?: string;
}) {
  return (
    <section className="card" aria-label={title} id={id}>
      <header className="card-head"><h2>{title}</h2>{actions}</header>
      {children}
    </section>
  );
}

export interface Column<T> {
  label: string;
  render: (row: T) => ReactNode;
  /** Shown without its label on a phone (e.g. the row's actions). */
  bare?: boolean;
}

/**
 * A table that on a phone turns into one card per row, each cell with its column's name,
 * so that nothing (least of all a row's actions) hides off-screen to the right.
 */
export function DataTable<T>({ columns, rows, rowKey, label }: {
  columns: Column<T>[]; rows: T[]; rowKey: (row: T) => string; label?: string;
}) {
  return (
    <table className="data" aria-label={label}>
      <thead><tr>{columns.map((c) => <th key={c.label} scope="col">{c.label}</th>)}</tr></thead>
      <tbody>{rows.map((row) => (
        <tr key={rowKey(row)}>{columns.map((c) => (
          <td key={c.label} data-label={c.bare ? undefined : c.label}
            className={c.bare ? "bare" : undefined}><div className="cell">{c.render(row)}</div></td>
        ))}</tr>
      ))}</tbody>
    </table>
  );
}

export interface ConfirmRequest {
  title: string;
  body: ReactNode;
  /** The button that does it, e.g. "Undeploy". */
  action: string;
}

/**
 * Asks before a destructive action, in the page (a modal dialog: focus starts on
 * "Keep it", Escape or a click outside keeps it). `confirm(request)` resolves true only
 * when the person chose the action.
 */
export function useConfirm(): [(request: ConfirmRequest) => Promise<boolean>, ReactNode] {
  const [pending, setPending] = useState<{ request: ConfirmRequest;
    resolve: (yes: boolean) => void } | null>(null);
  const confirm = (request: ConfirmRequest) => new Promise<boolean>((resolve) => {
    setPending({ request, resolve });
  });
  const close = (yes: boolean) => {
    pending?.resolve(yes);
    setPending(null);
  };
  const dialog = pending
    ? <ConfirmDialog request={pending.request} onClose={close} />
    : null;
  return [confirm, dialog];
}

function ConfirmDialog({ request, onClose }: {
  request: ConfirmRequest; onClose: (yes: boolean) => void;
}) {
  const keep = useRef<HTMLButtonElement>(null);
  const opener = useRef<Element | null>(document.activeElement);
  useEffect(() => {
    keep.current?.focus();
    const back = opener.current;
    return () => { if (back instanceof HTMLElement) back.focus(); };
  }, []);
  return (
    <div className="backdrop" onMouseDown={(e) => { if (e.target === e.currentTarget) onClose(false); }}>
      <div role="alertdialog" aria-modal="true" aria-labelledby="confirm-title"
        aria-describedby="confirm-body" className="dialog"
        onKeyDown={(e) => {
          if (e.key === "Escape") onClose(false);
          if (e.key === "Tab") {  // keep focus inside the dialog
            const buttons = Array.from(e.currentTarget.querySelectorAll("button"));
            const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
            const next = e.shiftKey ? (i <= 0 ? buttons.length - 1 : i - 1)
              : (i + 1) % buttons.length;
            buttons[next]?.focus();
            e.preventDefault();
          }
        }}>
        <h2 id="confirm-title">{request.title}</h2>
        <div id="confirm-body">{request.body}</div>
        <div className="dialog-actions">
          <button type="button" ref={keep} className="secondary" onClick={() => onClose(false)}>
            Keep it</button>
          <button type="button" className="danger" onClick={() => onClose(true)}>
            {request.action}</button>
        </div>
      </div>
    </div>
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

/** "3 min 20 s", "1 h 5 min": a duration in seconds for people. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/**
 * A model's name as people tell models apart: OpenAI names tuned models
 * `ft:<base>:<org>:<suffix>:<id>`, which all start alike, so the suffix and id come first.
 */
export function modelLabel(name: string): string {
  const tuned = /^ft:([^:]+):[^:]*:([^:]*):(.+)$/.exec(name);
  if (!tuned) return name;
  const [, base, suffix, id] = tuned;
  return `${suffix ? `${suffix} · ` : ""}${id} (tuned ${base})`;
}
