// SPDX-License-Identifier: Apache-2.0
import { Link, Route, Routes, useLocation } from "react-router-dom";
import { Layout } from "./components/Layout";
import { Batches } from "./pages/Batches";
import { Billing } from "./billing/Billing";
import { Compliance } from "./pages/Compliance";
import { Credits } from "./credits/Credits";
import { Enterprise } from "./pages/Enterprise";
import { FineTuning } from "./pages/FineTuning";
import { InvitationLink } from "./invitations/InvitationLink";
import { Invitations, NoOrganization } from "./invitations/Received";
import { Keys } from "./pages/Keys";
import { Members } from "./pages/Members";
import { Models } from "./pages/Models";
import { Overview } from "./pages/Overview";
import { Playground } from "./pages/Playground";
import { SignIn } from "./pages/SignIn";
import { Usage } from "./pages/Usage";
import { SessionProvider } from "./session";
import { EmptyState } from "./components/ui";

/** Any path the console does not know: said so, with the way back (not a silent redirect). */
export function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <EmptyState title="There is no such page in the console">
        Check the address, or go to the <Link to="/">Overview</Link>.
      </EmptyState>
    </>
  );
}

/** The token of an invitation's link (`/invitations?token=…`), or null elsewhere. */
export function invitationToken(pathname: string, search: string): string | null {
  if (pathname.replace(/\/+$/, "") !== "/invitations") return null;
  return new URLSearchParams(search).get("token") || null;
}

export function App() {
  const { pathname, search } = useLocation();
  const token = invitationToken(pathname, search);
  return (
    <SessionProvider fallback={<p className="loading" role="status">Loading the console…</p>}>
      {({ session, org, expired, signedIn }) => {
        // An invitation's link works signed in or not: the page says what it needs.
        if (token) return <InvitationLink token={token} />;
        if (!session.authenticated) {
          return <SignIn expired={expired} onSignedIn={signedIn} />;
        }
        if (!org) return <NoOrganization />;
        return (
          <Layout>
            <Routes key={org.slug}>
              <Route path="/" element={<Overview />} />
              <Route path="/models" element={<Models />} />
              <Route path="/playground" element={<Playground />} />
              <Route path="/fine-tuning/:jobId?" element={<FineTuning />} />
              <Route path="/batches" element={<Batches />} />
              <Route path="/usage" element={<Usage />} />
              <Route path="/billing" element={<Billing />} />
              <Route path="/credits" element={<Credits />} />
              <Route path="/keys" element={<Keys />} />
              <Route path="/members" element={<Members />} />
              <Route path="/enterprise" element={<Enterprise />} />
              <Route path="/compliance" element={<Compliance />} />
              <Route path="/invitations" element={<Invitations />} />
              <Route path="*" element={<NotFound />} />
            </Routes>
          </Layout>
        );
      }}
    </SessionProvider>
  );
}
