// SPDX-License-Identifier: Apache-2.0
import { useEffect, useRef, useState, type ReactNode } from "react";
import { NavLink, useLocation } from "react-router-dom";
import { api } from "../api/client";
import { forgetPlaygroundKeys } from "../api/playgroundKey";
import { rememberOrg, useSession } from "../session";

export const PAGES = [
  { path: "/", label: "Overview" },
  { path: "/models", label: "Models" },
  { path: "/playground", label: "Playground" },
  { path: "/fine-tuning", label: "Fine-tuning" },
  { path: "/batches", label: "Batches" },
  { path: "/usage", label: "Usage" },
  { path: "/billing", label: "Billing" },
  { path: "/credits", label: "Credits" },
  { path: "/keys", label: "API keys" },
  { path: "/members", label: "Members" },
  { path: "/enterprise", label: "Enterprise" },
  { path: "/compliance", label: "Compliance" },
];

/** The page a path shows ("/fine-tuning/ftjob-1" is Fine-tuning); null when none. */
export function pageOf(pathname: string): string | null {
  const first = `/${pathname.split("/")[1] ?? ""}`;
  return PAGES.find((p) => p.path === first)?.label ?? null;
}

/**
 * The page's title, and focus on its heading when the person moves to another page, so a
 * screen reader announces where they are (not on the first load: the skip link comes first).
 */
function useAnnouncePage(): void {
  const { pathname } = useLocation();
  const page = pageOf(pathname);
  const first = useRef(true);
  useEffect(() => {
    document.title = `${page ?? "Page not found"} · Potluck console`;
  }, [page]);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const heading = document.querySelector<HTMLElement>("main h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }, [page]);
}

export function Layout({ children }: { children: ReactNode }) {
  const { session, org, refresh } = useSession();
  const [menuOpen, setMenuOpen] = useState(false);
  const { pathname } = useLocation();
  useAnnouncePage();
  useEffect(() => setMenuOpen(false), [pathname]);
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <header className="topbar">
        <span className="brand">Potluck</span>
        <button type="button" className="secondary menu-button" aria-expanded={menuOpen}
          aria-controls="console-nav" onClick={() => setMenuOpen(!menuOpen)}>
          {menuOpen ? "Close menu" : "Menu"}</button>
      </header>
      <nav aria-label="Console" id="console-nav" className={menuOpen ? "open" : undefined}>
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
          <button type="button" className="secondary" onClick={async () => {
            forgetPlaygroundKeys();
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
