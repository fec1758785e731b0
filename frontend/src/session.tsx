// SPDX-License-Identifier: Apache-2.0
/** Who is signed in, and which organization the console acts in. */
import { createContext, useContext, type ReactNode } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, setOrganization } from "./api/client";
import type { OrgRole, Session } from "./api/types";

interface SessionState {
  session: Session;
  org: OrgRole | null;
  refresh: () => Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

const ORG_STORAGE = "potluck.org";

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
  const query = useQuery({ queryKey: ["session"], queryFn: () => api<Session>("/api/session") });
  if (query.isPending) return <>{fallback}</>;
  if (query.isError) {
    return <p role="alert" className="error">Cannot load your session: {query.error.message}</p>;
  }
  const org = chooseOrg(query.data, sessionStorage.getItem(ORG_STORAGE));
  setOrganization(org?.slug ?? null);
  const state: SessionState = {
    session: query.data,
    org,
    refresh: async () => {
      await client.invalidateQueries();
    },
  };
  return <SessionContext.Provider value={state}>{children(state)}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error("useSession outside SessionProvider");
  return state;
}
