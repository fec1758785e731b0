// SPDX-License-Identifier: Apache-2.0
/** What to tell a person whose invitation link no longer works, from the server's refusal. */
import { ApiError } from "../api/client";

export interface Ended { title: string; advice: string; status: string }

const ENDED: Record<string, Omit<Ended, "status">> = {
  expired: { title: "This invitation has expired",
    advice: "Invitations are valid for a few days. Ask an admin of the organization to invite you again." },
  accepted: { title: "This invitation has already been accepted",
    advice: "Sign in to the console to work in the organization." },
  declined: { title: "This invitation was declined",
    advice: "If that was a mistake, ask an admin of the organization to invite you again." },
  revoked: { title: "This invitation was withdrawn",
    advice: "An admin of the organization revoked it. Ask them if you expected to join." },
};

/**
 * The ended state of an invitation the server refused to show or answer: 404 (an unknown
 * link: mistyped, or replaced by a newer one) or 409 "the invitation is <status>"
 * (potluck/accounts/invitations.py). Null for any other error.
 */
export function endedInvitation(error: unknown): Ended | null {
  if (!(error instanceof ApiError)) return null;
  if (error.status === 404) {
    return { status: "unknown", title: "This invitation link does not work",
      advice: "It may be incomplete, or replaced by a newer link (a new link stops the "
        + "earlier one). Ask whoever invited you to send it again." };
  }
  const status = error.status === 409 ? /the invitation is (\w+)/.exec(error.message)?.[1] : null;
  return status && ENDED[status] ? { status, ...ENDED[status] } : null;
}

/** "12 Mar 2026, 14:05" in the browser's language and time zone. */
export function when(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
