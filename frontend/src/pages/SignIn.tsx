// SPDX-License-Identifier: Apache-2.0
import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import { ApiError, api } from "../api/client";
import type { Provider, Session } from "../api/types";
import { Busy, ErrorMessage, FieldError, fieldError } from "../components/ui";

/**
 * Seconds left until `start(seconds)`'s moment, counted down once a second (0 when there is
 * nothing to wait for).
 */
export function useCountdown(): [number, (seconds: number) => void] {
  const [until, setUntil] = useState<number | null>(null);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (until === null) return undefined;
    const timer = setInterval(() => {
      const t = Date.now();
      setNow(t);
      if (t >= until) setUntil(null);
    }, 250);
    return () => clearInterval(timer);
  }, [until]);
  const left = until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
  return [left, (seconds: number) => {
    const t = Date.now();
    setNow(t);
    setUntil(t + seconds * 1000);
  }];
}

/**
 * The password form: email (or username) and password, then `onSignedIn` with the new
 * session. A throttled attempt (429: too many failed sign-ins) says what the server said and
 * keeps the button off for the `Retry-After` seconds. SSO buttons appear when an extension
 * offers one for the email.
 */
export function SignInForm({ onSignedIn, initialEmail = "", label = "Sign in" }: {
  onSignedIn: (session: Session) => void; initialEmail?: string; label?: string;
}) {
  const [email, setEmail] = useState(initialEmail);
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [wait, startWait] = useCountdown();
  // A throttled attempt whose wait is over: the server's "try again in N seconds" is stale.
  const waited = error instanceof ApiError && error.status === 429 && Boolean(error.retryAfter)
    && wait === 0;
  const domain = email.includes("@") ? email.trim() : "";
  const providers = useQuery({
    queryKey: ["providers", domain],
    queryFn: () => api<{ providers: Provider[] }>("/api/session/providers",
      { query: { email: domain || undefined } }),
  });

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (wait > 0) return;
    setBusy(true);
    setError(null);
    try {
      const isEmail = email.includes("@");
      const session = await api<Session>("/api/session", {
        method: "POST",
        body: isEmail ? { email, password } : { username: email, password },
      });
      onSignedIn(session);
    } catch (caught) {
      setError(caught);
      if (caught instanceof ApiError && caught.status === 429 && caught.retryAfter) {
        startWait(caught.retryAfter);
      }
    } finally {
      setBusy(false);
    }
  }

  const emailError = fieldError(error, "email");
  let button: ReactNode = label;
  if (busy) button = <Busy label="Signing in" />;
  else if (wait > 0) button = `Try again in ${wait} s`;
  return (
    <>
      <form onSubmit={submit} aria-label="Sign in">
        <label htmlFor="email">Email or username</label>
        <input id="email" name="email" autoComplete="username" autoFocus value={email}
          onChange={(e) => setEmail(e.target.value)} required
          aria-describedby={emailError ? "email-error" : undefined} />
        <FieldError id="email-error" message={emailError} />
        <label htmlFor="password">Password</label>
        <input id="password" name="password" type="password" autoComplete="current-password"
          value={password} onChange={(e) => setPassword(e.target.value)} required />
        {error && !emailError && !waited ? <ErrorMessage error={error} /> : null}
        {waited ? <p role="status" className="muted">You can try again now.</p> : null}
        <button type="submit" disabled={busy || wait > 0}
          aria-describedby={wait > 0 ? "signin-wait" : undefined}>{button}</button>
        {wait > 0 ? <span id="signin-wait" className="sr-only">Signing in is paused after too
          many failed attempts.</span> : null}
      </form>
      {providers.data?.providers.length ? (
        <div className="providers" aria-label="Other ways to sign in">
          {providers.data.providers.map((p) => (
            <a key={p.key} className="button" href={p.start_url}>{p.title}</a>
          ))}
        </div>
      ) : null}
    </>
  );
}

/**
 * The sign-in page. When the session ended under the person (`expired`), it says so; signing
 * in shows the same page.
 */
export function SignIn({ onSignedIn, expired = false }: {
  onSignedIn: (session: Session) => void; expired?: boolean;
}) {
  return (
    <main className="sign-in">
      <h1>Sign in to Potluck</h1>
      {expired ? <p className="notice" role="status" data-testid="session-ended">Your session
        has ended: sign in again to go back to the page you were on.</p> : null}
      <SignInForm onSignedIn={onSignedIn} />
      <p className="hint">No account yet? An admin of your organization invites you, and the
        invitation's link lets you choose a password. The first admin's password is printed
        by <code>potluck up</code>.</p>
    </main>
  );
}
