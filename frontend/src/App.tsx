// SPDX-License-Identifier: Apache-2.0
import { useQueryClient } from "@tanstack/react-query";
import { Navigate, Route, Routes } from "react-router-dom";
import { Layout } from "./components/Layout";
import { Batches } from "./pages/Batches";
import { Billing } from "./billing/Billing";
import { Compliance } from "./pages/Compliance";
import { Enterprise } from "./pages/Enterprise";
import { FineTuning } from "./pages/FineTuning";
import { Keys } from "./pages/Keys";
import { Members } from "./pages/Members";
import { Models } from "./pages/Models";
import { Overview } from "./pages/Overview";
import { Playground } from "./pages/Playground";
import { SignIn } from "./pages/SignIn";
import { Usage } from "./pages/Usage";
import { SessionProvider } from "./session";
import { EmptyState } from "./components/ui";

export function App() {
  const client = useQueryClient();
  return (
    <SessionProvider fallback={<p className="loading" role="status">Loading the console…</p>}>
      {({ session, org }) => {
        if (!session.authenticated) {
          return <SignIn onSignedIn={(next) => { client.setQueryData(["session"], next); }} />;
        }
        if (!org) {
          return (
            <main className="sign-in">
              <EmptyState title="You are not a member of any organization">
                Ask an admin to add you (<code>potluck users add {session.user?.email} --org …</code>),
                or create one with <code>potluck orgs create</code>.
              </EmptyState>
            </main>
          );
        }
        return (
          <Layout>
            <Routes key={org.slug}>
              <Route path="/" element={<Overview />} />
              <Route path="/models" element={<Models />} />
              <Route path="/playground" element={<Playground />} />
              <Route path="/fine-tuning" element={<FineTuning />} />
              <Route path="/batches" element={<Batches />} />
              <Route path="/usage" element={<Usage />} />
              <Route path="/billing" element={<Billing />} />
              <Route path="/keys" element={<Keys />} />
              <Route path="/members" element={<Members />} />
              <Route path="/enterprise" element={<Enterprise />} />
              <Route path="/compliance" element={<Compliance />} />
              <Route path="*" element={<Navigate to="/" replace />} />
            </Routes>
          </Layout>
        );
      }}
    </SessionProvider>
  );
}
