// SPDX-License-Identifier: Apache-2.0
/**
 * The page an invitation's link opens (`/invitations?token=…`), signed in or not.
 *
 * The server decides (potluck/accounts/invitations.py): an address with no account chooses
 * its password here (accepting creates the account and signs it in); an address with an
 * account must be signed in as itself to accept, as the link alone never accepts for an
 * existing account. Anyone holding the link may decline.
 */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router-dom";
import { api } from "../api/client";
import type { Invitation, Joined, Session, TokenInvitation } from "../api/types";
import { Busy, ErrorMessage, FieldError, Loading, fieldError, useConfirm } from "../components/ui";
import { SignInForm } from "../pages/SignIn";
import { rememberOrg, useSession } from "../session";
import { endedInvitation, when } from "./ended";

function article(role: string): string {
  return /^[aeiou]/i.test(role) ? "an" : "a";
}

/** A new account's password, chosen twice (a typo here would lock the person out). */
function NewAccountForm({ email, org, pending, error, onSubmit }: {
  email: string; org: string; pending: boolean; error: unknown;
  onSubmit: (password: string) => void;
}) {
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [mismatch, setMismatch] = useState(false);
  const passwordError = fieldError(error, "password");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (password !== repeat) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    onSubmit(password);
  };
  return (
    <form aria-label="Choose a password and join" onSubmit={submit}>
      <p>Choose a password for your new Potluck account, <strong>{email}</strong>.</p>
      {/* For password managers: the account the new password belongs to. */}
      <input type="email" name="username" autoComplete="username" value={email} readOnly hidden />
      <label htmlFor="new-password">Password</label>
      <input id="new-password" type="password" autoComplete="new-password" required value={password}
        onChange={(e) => setPassword(e.target.value)}
        aria-describedby={passwordError ? "new-password-error" : "new-password-hint"} />
      <FieldError id="new-password-error" message={passwordError} />
      <span id="new-password-hint" className="hint small">At least 8 characters, not a common
        password and not like your email address.</span>
      <label htmlFor="repeat-password">Repeat the password</label>
      <input id="repeat-password" type="password" autoComplete="new-password" required value={repeat}
        onChange={(e) => { setRepeat(e.target.value); setMismatch(false); }}
        aria-describedby={mismatch ? "repeat-password-error" : undefined} />
      <FieldError id="repeat-password-error"
        message={mismatch ? "The two passwords differ: type the same one twice." : undefined} />
      <button type="submit" disabled={pending}>
        {pending ? <Busy label="Creating your account" /> : `Create my account and join ${org}`}</button>
    </form>
  );
}

export function InvitationLink({ token }: { token: string }) {
  const { session, signedIn, refresh } = useSession();
  const navigate = useNavigate();
  const [confirm, dialog] = useConfirm();
  const [declined, setDeclined] = useState<string | null>(null);
  const found = useQuery({ queryKey: ["invitation-link", token], retry: false,
    queryFn: () => api<TokenInvitation>("/api/invitations/token", { query: { token } }) });
  // Joined: into the console, in the organization just joined, without the link's token in
  // the address bar or the history.
  const enter = async (joined: Joined) => {
    rememberOrg(joined.organization.slug);
    const next = await api<Session>("/api/session");
    navigate("/", { replace: true });
    signedIn(next);
  };
  const accept = useMutation({
    mutationFn: (password?: string) => api<Joined>("/api/invitations/accept",
      { method: "POST", body: password === undefined ? { token } : { token, password } }),
    onSuccess: enter,
  });
  const decline = useMutation({
    mutationFn: () => api<Invitation>("/api/invitations/decline", { method: "POST", body: { token } }),
    onSuccess: () => setDeclined(found.data?.organization.name ?? "the organization"),
  });
  const ended = endedInvitation(found.error) ?? endedInvitation(accept.error)
    ?? endedInvitation(decline.error);

  if (found.isPending) {
    return <main className="sign-in invitation"><h1>Invitation</h1><Loading label="the invitation" /></main>;
  }
  if (declined) {
    return (
      <main className="sign-in invitation">
        <h1>Invitation declined</h1>
        <p role="status">You declined to join {declined}. The link no longer works; nothing else
          happens. You can close this page.</p>
      </main>
    );
  }
  if (ended) {
    return (
      <main className="sign-in invitation" data-testid="invitation-ended" data-status={ended.status}>
        <h1>{ended.title}</h1>
        <p>{ended.advice}</p>
        <p><Link to="/" replace>Go to the console</Link></p>
      </main>
    );
  }
  if (found.isError) {
    return (
      <main className="sign-in invitation">
        <h1>Invitation</h1>
        <ErrorMessage error={found.error} retry={() => { void found.refetch(); }} />
      </main>
    );
  }
  const invitation = found.data;
  const org = invitation.organization.name;
  const me = session.authenticated ? session.user?.email ?? "" : "";
  const isMe = Boolean(me) && me.toLowerCase() === invitation.email.toLowerCase();
  const askDecline = async () => {
    if (await confirm({ title: `Decline the invitation to ${org}?`, action: "Decline",
      body: <p>The link stops working. To join later, an admin of {org} must invite you
        again.</p> })) decline.mutate();
  };
  const otherError = accept.error && !fieldError(accept.error, "password") ? accept.error
    : decline.error;

  let answer;
  if (session.authenticated && !isMe) {
    answer = (
      <>
        <p className="notice" role="status">You are signed in as <strong>{me || session.user?.username}</strong>,
          but this invitation is for <strong>{invitation.email}</strong>. Sign out, then accept
          it as {invitation.email}.</p>
        <button type="button" className="secondary" onClick={async () => {
          await api("/api/session", { method: "DELETE" });
          await refresh();
        }}>Sign out</button>
      </>
    );
  } else if (isMe) {
    answer = (
      <>
        <p>You are signed in as <strong>{me}</strong>.</p>
        <button type="button" disabled={accept.isPending} onClick={() => accept.mutate(undefined)}>
          {accept.isPending ? <Busy label="Joining" /> : `Accept and join ${org}`}</button>
      </>
    );
  } else if (invitation.has_account) {
    answer = (
      <>
        <p><strong>{invitation.email}</strong> already has a Potluck account: sign in to
          accept.</p>
        <SignInForm initialEmail={invitation.email} onSignedIn={signedIn} label="Sign in to accept" />
      </>
    );
  } else {
    answer = <NewAccountForm email={invitation.email} org={org} pending={accept.isPending}
      error={accept.error} onSubmit={(password) => accept.mutate(password)} />;
  }

  return (
    <main className="sign-in invitation">
      {dialog}
      <h1>Join {org} on Potluck</h1>
      <p data-testid="invitation-summary">{invitation.invited_by ?? "An administrator"} invites{" "}
        <strong>{invitation.email}</strong> to join <strong>{org}</strong> as{" "}
        {article(invitation.role)} <strong>{invitation.role}</strong>.</p>
      <p className="muted small">The invitation is valid until {when(invitation.expires_at)}.</p>
      {answer}
      <ErrorMessage error={otherError} />
      <div className="decline">
        <button type="button" className="danger" disabled={decline.isPending || accept.isPending}
          onClick={askDecline}>{decline.isPending ? <Busy label="Declining" /> : "Decline"}</button>
      </div>
    </main>
  );
}
