// SPDX-License-Identifier: Apache-2.0
/** Who is signed in, and which organization the console acts in. */
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, setOrganization, setUnauthorizedHandler } from "./api/client";
import { forgetPlaygroundKeys } from "./api/playgroundKey";
import type { OrgRole, Session } from "./api/types";

interface SessionState {
  session: Session;
  org: OrgRole | null;
  /** True when the session ended under the person (a 401): sign-in says so. */
  expired: boolean;
  refresh: () => Promise<void>;
  /** After sign-in: the new session, and every page's data fetched afresh. */
  signedIn: (next: Session) => void;
}

const SessionContext = createContext<SessionState | null>(null);

const ORG_STORAGE = "potluck.org";

export const SIGNED_OUT: Session = {
  authenticated: false, user: null, organizations: [], logout_url: "/api/session",
};

export function chooseOrg(session: Session, remembered: string | null): OrgRole | null {
  const orgs = session.organizations;
  return orgs.find((o) => o.slug === remembered) ?? orgs[0] ?? null;
}

export function rememberOrg(slug: string): void {
  sessionStorage.setItem(ORG_STORAGE, slug);
}

export function SessionProvider({ children, fallback }: {
  children: (state: SessionState) => ReactNode; fallback: ReactNode;
}) {
  const client = useQueryClient();
  const [expired, setExpired] = useState(false);
  const query = useQuery({ queryKey: ["session"], queryFn: () => api<Session>("/api/session") });
  useEffect(() => {
    // Any 401 of a session call: back to sign-in, without the pages' stale data. The URL
    // stays as it is, so signing in again shows the same page.
    setUnauthorizedHandler(() => {
      if (!client.getQueryData<Session>(["session"])?.authenticated) return;
      setExpired(true);
      void client.cancelQueries({ predicate: (q) => q.queryKey[0] !== "session" });
      client.removeQueries({ predicate: (q) => q.queryKey[0] !== "session" });
      client.setQueryData(["session"], SIGNED_OUT);
    });
    return () => setUnauthorizedHandler(null);
  }, [client]);
  if (query.isPending) return <>{fallback}</>;
  if (query.isError) {
    return <p role="alert" className="error">Cannot load your session: {query.error.message}</p>;
  }
  const org = chooseOrg(query.data, sessionStorage.getItem(ORG_STORAGE));
  setOrganization(org?.slug ?? null);
  const state: SessionState = {
    session: query.data,
    org,
    expired,
    refresh: async () => {
      await client.invalidateQueries();
    },
    signedIn: (next) => {
      setExpired(false);
      client.removeQueries({ predicate: (q) => q.queryKey[0] !== "session" });
      client.setQueryData(["session"], next);
    },
  };
  return <SessionContext.Provider value={state}>{children(state)}</SessionContext.Provider>;
}

/**
 * Signs out: forgets this browser's Playground keys, then ends the session (or follows the
 * sign-out address an extension gave, e.g. SSO's) and shows sign-in.
 */
export async function signOut(state: Pick<SessionState, "session" | "refresh">): Promise<void> {
  forgetPlaygroundKeys();
  if (state.session.logout_url !== "/api/session") {
    window.location.assign(state.session.logout_url);
    return;
  }
  await api("/api/session", { method: "DELETE" });
  await state.refresh();
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error("useSession outside SessionProvider");
  return state;
}
