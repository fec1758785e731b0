// SPDX-License-Identifier: Apache-2.0
import { useState, type FormEvent } from "react";
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import type { Provider, Session } from "../api/types";
import { Busy, ErrorMessage, FieldError, fieldError } from "../components/ui";

/**
 * Password sign-in; SSO buttons appear when an extension offers one for the email. When the
 * session ended under the person (`expired`), it says so; signing in shows the same page.
 */
export function SignIn({ onSignedIn, expired = false }: {
  onSignedIn: (session: Session) => void; expired?: boolean;
}) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const domain = email.includes("@") ? email.trim() : "";
  const providers = useQuery({
    queryKey: ["providers", domain],
    queryFn: () => api<{ providers: Provider[] }>("/api/session/providers",
      { query: { email: domain || undefined } }),
  });

  async function submit(event: FormEvent) {
    event.preventDefault();
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
    } finally {
      setBusy(false);
    }
  }

  const emailError = fieldError(error, "email");
  return (
    <main className="sign-in">
      <h1>Sign in to Potluck</h1>
      {expired ? <p className="notice" role="status" data-testid="session-ended">Your session
        has ended: sign in again to go back to the page you were on.</p> : null}
      <form onSubmit={submit} aria-label="Sign in">
        <label htmlFor="email">Email or username</label>
        <input id="email" name="email" autoComplete="username" autoFocus value={email}
          onChange={(e) => setEmail(e.target.value)} required
          aria-describedby={emailError ? "email-error" : undefined} />
        <FieldError id="email-error" message={emailError} />
        <label htmlFor="password">Password</label>
        <input id="password" name="password" type="password" autoComplete="current-password"
          value={password} onChange={(e) => setPassword(e.target.value)} required />
        {error && !emailError ? <ErrorMessage error={error} /> : null}
        <button type="submit" disabled={busy}>{busy ? <Busy label="Signing in" /> : "Sign in"}</button>
      </form>
      {providers.data?.providers.length ? (
        <div className="providers" aria-label="Other ways to sign in">
          {providers.data.providers.map((p) => (
            <a key={p.key} className="button" href={p.start_url}>{p.title}</a>
          ))}
        </div>
      ) : null}
      <p className="hint">No account yet? An admin adds you with <code>potluck users add</code>;
        the first admin's password is printed by <code>potluck up</code>.</p>
    </main>
  );
}
