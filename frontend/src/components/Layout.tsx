// SPDX-License-Identifier: Apache-2.0
import type { ReactNode } from "react";
import { NavLink } from "react-router-dom";
import { api } from "../api/client";
import { rememberOrg, useSession } from "../session";

export const PAGES = [
  { path: "/", label: "Overview" },
  { path: "/models", label: "Models" },
  { path: "/playground", label: "Playground" },
  { path: "/fine-tuning", label: "Fine-tuning" },
  { path: "/batches", label: "Batches" },
  { path: "/usage", label: "Usage" },
  { path: "/billing", label: "Billing" },
  { path: "/keys", label: "API keys" },
  { path: "/members", label: "Members" },
  { path: "/enterprise", label: "Enterprise" },
  { path: "/compliance", label: "Compliance" },
];

export function Layout({ children }: { children: ReactNode }) {
  const { session, org, refresh } = useSession();
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <nav aria-label="Console">
        <div className="brand">Potluck</div>
        <ul>
          {PAGES.map((page) => (
            <li key={page.path}>
              <NavLink to={page.path} end={page.path === "/"}>{page.label}</NavLink>
            </li>
          ))}
        </ul>
        <div className="who">
          {session.organizations.length > 1 ? (
            <>
              <label htmlFor="org-select">Organization</label>
              <select id="org-select" value={org?.slug ?? ""} onChange={async (e) => {
                rememberOrg(e.target.value);
                await refresh();
              }}>
                {session.organizations.map((o) => (
                  <option key={o.slug} value={o.slug}>{o.name}</option>
                ))}
              </select>
            </>
          ) : <div>{org?.name} <span className="muted">({org?.role})</span></div>}
          <div className="muted">{session.user?.email || session.user?.username}</div>
          <button type="button" onClick={async () => {
            if (session.logout_url !== "/api/session") {
              window.location.assign(session.logout_url);
              return;
            }
            await api("/api/session", { method: "DELETE" });
            await refresh();
          }}>Sign out</button>
        </div>
      </nav>
      <main id="main" tabIndex={-1}>{children}</main>
    </div>
  );
}
