// SPDX-License-Identifier: Apache-2.0
/**
 * The organization's side of invitations (Members page): invite an email address (POST
 * /api/invitations; the person joins when they accept), see the pending ones, revoke one.
 */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { Invitation, SentInvitation } from "../api/types";
import { Busy, CopyButton, DataTable, EmptyState, ErrorMessage, FieldError, Loadable, fieldError,
  useConfirm } from "../components/ui";
import { when } from "./ended";

export const ROLES = ["owner", "admin", "member", "viewer"];
const PENDING = ["invitations", "pending"];

/** How the invitation reaches the person, by its `delivery`. */
export function Delivery({ sent }: { sent: SentInvitation }) {
  const command = `potluck invitations link ${sent.id}`;
  if (sent.delivery === "sent") {
    return (
      <p role="status" className="notice" data-testid="invite-delivery" data-delivery="sent">
        Invitation emailed to <strong>{sent.email}</strong>. They join as {sent.role} when they
        accept; the link works until {when(sent.expires_at)}.</p>
    );
  }
  return (
    <div role="status" className="notice" data-testid="invite-delivery" data-delivery={sent.delivery}>
      <p>Invited <strong>{sent.email}</strong> as {sent.role}, but {sent.delivery === "failed"
        ? "the email could not be sent (the server's mail settings refused it)"
        : "this server does not send email"}. The server's operator hands them the link, made
        with:</p>
      <p className="command"><code data-testid="link-command">{command}</code>{" "}
        <CopyButton text={command} label="Copy the command" /></p>
      <p className="small">A new link stops the previous one. It works until {when(sent.expires_at)}.</p>
    </div>
  );
}

export function InviteForm() {
  const client = useQueryClient();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("member");
  const invite = useMutation({
    mutationFn: () => api<SentInvitation>("/api/invitations", { method: "POST", body: { email, role } }),
    onSuccess: async () => {
      setEmail("");
      await client.invalidateQueries({ queryKey: PENDING });
    },
  });
  const submit = (e: FormEvent) => { e.preventDefault(); invite.mutate(); };
  const emailError = fieldError(invite.error, "email");
  const roleError = fieldError(invite.error, "role");
  return (
    <>
      <form className="inline-form" aria-label="Invite a member" onSubmit={submit}>
        <div className="grow"><label htmlFor="invite-email">Email</label>
          <input id="invite-email" type="email" value={email} required
            onChange={(e) => { setEmail(e.target.value); invite.reset(); }}
            aria-describedby={emailError ? "invite-email-error" : undefined} />
          <FieldError id="invite-email-error" message={emailError} /></div>
        <div><label htmlFor="invite-role">Role</label>
          <select id="invite-role" value={role} onChange={(e) => setRole(e.target.value)}
            aria-describedby={roleError ? "invite-role-error" : undefined}>
            {ROLES.map((r) => <option key={r}>{r}</option>)}</select>
          <FieldError id="invite-role-error" message={roleError} /></div>
        <button type="submit" disabled={invite.isPending}>
          {invite.isPending ? <Busy label="Inviting" /> : "Invite"}</button>
        {invite.error && !emailError && !roleError ? <ErrorMessage error={invite.error} /> : null}
      </form>
      {invite.data ? <Delivery sent={invite.data} /> : null}
      <p className="hint">People join when they accept the invitation: someone new chooses a
        password from its link; someone with an account accepts it signed in (it is listed
        under Invitations). A pending invitation takes no seat.</p>
    </>
  );
}

/** The organization's pending invitations, each revocable (after a confirmation). */
export function PendingInvitations() {
  const client = useQueryClient();
  const [confirm, dialog] = useConfirm();
  const pending = useQuery({ queryKey: PENDING,
    queryFn: async () => items(await api<{ results: Invitation[] }>("/api/invitations",
      { query: { status: "pending" } })) });
  const revoke = useMutation({
    mutationFn: (id: string) => api<Invitation>(`/api/invitations/${id}`, { method: "DELETE" }),
    onSettled: () => client.invalidateQueries({ queryKey: PENDING }),
  });
  return (
    <>
      {dialog}
      <ErrorMessage error={revoke.error} />
      <Loadable query={pending} label="invitations" isEmpty={(list) => !list.length}
        empty={<EmptyState title="No pending invitation">Invite someone above; the
          invitation waits here until they answer it.</EmptyState>}>
        {(list) => (
          <DataTable label="Pending invitations" rows={list} rowKey={(i) => i.id} columns={[
            { label: "Email", render: (i) => i.email },
            { label: "Role", render: (i) => i.role },
            { label: "Invited by", render: (i) => i.invited_by ?? "the operator" },
            { label: "Valid until", render: (i) => when(i.expires_at) },
            { label: "Actions", bare: true, render: (i) => (
              <button type="button" className="danger" aria-label={`Revoke the invitation of ${i.email}`}
                disabled={revoke.isPending} onClick={async () => {
                  if (await confirm({ title: `Revoke the invitation of ${i.email}?`, action: "Revoke",
                    body: <p>Its link stops working and {i.email} can no longer join with it; to
                      let them in later, invite them again.</p> })) revoke.mutate(i.id);
                }}>Revoke</button>
            ) },
          ]} />
        )}
      </Loadable>
    </>
  );
}
