// SPDX-License-Identifier: Apache-2.0
/**
 * Invitations to the signed-in person, from any organization (GET /api/invitations/received),
 * answered here: accept (they join at once) or decline.
 */
import { useState, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router-dom";
import { api } from "../api/client";
import type { Joined, ReceivedInvitation } from "../api/types";
import { Busy, DataTable, EmptyState, ErrorMessage, Loadable, Section, useConfirm }
  from "../components/ui";
import { rememberOrg, useSession } from "../session";
import { endedInvitation, when } from "./ended";

export const RECEIVED = ["received-invitations"];

/** The pending invitations to the signed-in person (checked again every minute). */
export function useReceivedInvitations() {
  return useQuery({ queryKey: RECEIVED, refetchInterval: 60_000,
    queryFn: async () => {
      const page = await api<{ results?: ReceivedInvitation[] }>("/api/invitations/received");
      return Array.isArray(page?.results) ? page.results : [];
    } });
}

/** The list with Accept and Decline; `onJoined` after an acceptance. */
export function ReceivedList({ onJoined, empty }: {
  onJoined: (joined: Joined) => void; empty?: ReactNode;
}) {
  const client = useQueryClient();
  const [confirm, dialog] = useConfirm();
  const received = useReceivedInvitations();
  const answer = useMutation({
    mutationFn: (call: { id: string; answer: "accept" | "decline" }) =>
      api<Joined>(`/api/invitations/received/${call.id}/${call.answer}`, { method: "POST" }),
    onSuccess: (result, call) => { if (call.answer === "accept") onJoined(result); },
    onSettled: () => client.invalidateQueries({ queryKey: RECEIVED }),
  });
  const ended = endedInvitation(answer.error);
  return (
    <>
      {dialog}
      {ended ? <p role="alert" className="error">{ended.title}. {ended.advice}</p>
        : <ErrorMessage error={answer.error} />}
      <Loadable query={received} label="invitations" isEmpty={(list) => !list.length}
        empty={empty ?? <EmptyState title="No invitation is waiting for you">When an admin of
          an organization invites your email address, it appears here.</EmptyState>}>
        {(list) => (
          <DataTable label="Invitations to you" rows={list} rowKey={(i) => i.id} columns={[
            { label: "Organization", render: (i) => <strong>{i.organization.name}</strong> },
            { label: "Role", render: (i) => i.role },
            { label: "Invited by", render: (i) => i.invited_by ?? "the operator" },
            { label: "Valid until", render: (i) => when(i.expires_at) },
            { label: "Answer", bare: true, render: (i) => (
              <div className="actions">
                <button type="button" disabled={answer.isPending}
                  aria-label={`Accept the invitation to ${i.organization.name}`}
                  onClick={() => answer.mutate({ id: i.id, answer: "accept" })}>
                  {answer.isPending && answer.variables?.id === i.id
                    && answer.variables.answer === "accept" ? <Busy label="Joining" /> : "Accept"}</button>
                <button type="button" className="danger" disabled={answer.isPending}
                  aria-label={`Decline the invitation to ${i.organization.name}`}
                  onClick={async () => {
                    if (await confirm({ title: `Decline the invitation to ${i.organization.name}?`,
                      action: "Decline", body: <p>To join later, an admin of
                        {" "}{i.organization.name} must invite you again.</p> })) {
                      answer.mutate({ id: i.id, answer: "decline" });
                    }
                  }}>Decline</button>
              </div>
            ) },
          ]} />
        )}
      </Loadable>
    </>
  );
}

/** The Invitations page of the console (signed in, in an organization). */
export function Invitations() {
  const { session, org } = useSession();
  const client = useQueryClient();
  const navigate = useNavigate();
  const [joined, setJoined] = useState<Joined | null>(null);
  return (
    <>
      <h1>Invitations</h1>
      {joined ? (
        <div className="notice joined" role="status">
          <p>You joined <strong>{joined.organization.name}</strong> as {joined.role}.</p>
          {joined.organization.slug !== org?.slug ? (
            <button type="button" onClick={async () => {
              rememberOrg(joined.organization.slug);
              navigate("/");
              await client.invalidateQueries();
            }}>Open {joined.organization.name}</button>
          ) : null}
        </div>
      ) : null}
      <Section title={`Invitations to ${session.user?.email || "you"}`}>
        <ReceivedList onJoined={async (made) => {
          setJoined(made);
          await client.invalidateQueries({ queryKey: ["session"] });
        }} />
      </Section>
    </>
  );
}

/**
 * Signed in, but in no organization yet: the invitations waiting for the person (accepting
 * one opens the console in that organization), or what to ask for.
 */
export function NoOrganization() {
  const { session, refresh } = useSession();
  const client = useQueryClient();
  const email = session.user?.email || session.user?.username || "";
  return (
    <main className="sign-in wide">
      <h1>Welcome to Potluck</h1>
      <ReceivedList onJoined={async (made) => {
        rememberOrg(made.organization.slug);
        await client.invalidateQueries({ queryKey: ["session"] });
      }} empty={
        <EmptyState title="You are not a member of any organization">
          Ask an admin of your organization to invite <strong>{email}</strong> (on the
          console's Members page); the invitation then appears here. The server's operator can
          also add you (<code>potluck users add {email} --org …</code>) or create an
          organization (<code>potluck orgs create</code>).
        </EmptyState>} />
      <p><button type="button" className="secondary" onClick={async () => {
        await api("/api/session", { method: "DELETE" });
        await refresh();
      }}>Sign out</button></p>
    </main>
  );
}
