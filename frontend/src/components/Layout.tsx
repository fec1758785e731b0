// SPDX-License-Identifier: Apache-2.0
import { useEffect, useRef, useState, type ReactNode } from "react";
import { Link, NavLink, useLocation } from "react-router-dom";
import { useReceivedInvitations } from "../invitations/Received";
import { rememberOrg, signOut, useSession } from "../session";

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

/** Pages the navigation names only when they have something: invitations to the person. */
const OTHER_PAGES = [{ path: "/invitations", label: "Invitations" }];

/** The page a path shows ("/fine-tuning/ftjob-1" is Fine-tuning); null when none. */
export function pageOf(pathname: string): string | null {
  const first = `/${pathname.split("/")[1] ?? ""}`;
  return [...PAGES, ...OTHER_PAGES].find((p) => p.path === first)?.label ?? null;
}

/** "2 invitations": how many wait for the person. */
function invitationsText(count: number): string {
  return `${count} invitation${count === 1 ? "" : "s"}`;
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
  const waiting = useReceivedInvitations().data?.length ?? 0;
  const onInvitations = pageOf(pathname) === "Invitations";
  useAnnouncePage();
  useEffect(() => setMenuOpen(false), [pathname]);
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <header className="topbar">
        <span className="brand">Potluck</span>
        {waiting ? <Link to="/invitations" className="invitations-badge" data-testid="invitations-badge-top">
          {invitationsText(waiting)}</Link> : null}
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
          {waiting || onInvitations ? (
            <li>
              <NavLink to="/invitations" data-testid="invitations-badge">Invitations
                {waiting ? <> <span className="count" aria-hidden="true">{waiting}</span>
                  <span className="sr-only">({invitationsText(waiting)} waiting)</span></> : null}
              </NavLink>
            </li>
          ) : null}
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
          <button type="button" className="secondary"
            onClick={() => signOut({ session, refresh })}>Sign out</button>
        </div>
      </nav>
      <main id="main" tabIndex={-1}>{children}</main>
    </div>
  );
}
