// SPDX-License-Identifier: Apache-2.0
/** Invitations: the organization's side (invite, pending, revoke), the link's page, and the
 * invitations waiting for a signed-in person. The server is faked at fetch only. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { SESSION, fakeServer, renderApp, renderPage, type Answer, type Call } from "../test-utils";
import { Members } from "../pages/Members";

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
  document.cookie = "csrftoken=csrf-abc";
});
afterEach(() => vi.unstubAllGlobals());

const SIGNED_OUT = { authenticated: false, user: null, organizations: [], logout_url: "/api/session" };
const GLOBEX = { id: "o2", slug: "globex", name: "Globex" };
const LINK = { organization: GLOBEX, email: "new@globex.test", role: "member",
  invited_by: "owner@globex.test", expires_at: "2030-01-08T10:00:00Z", has_account: false };
const JOINED = { organization: GLOBEX, role: "member", email: "new@globex.test" };
const NEW_SESSION = { authenticated: true,
  user: { id: 9, email: "new@globex.test", username: "new@globex.test", is_superuser: false },
  organizations: [{ ...GLOBEX, role: "member" }], logout_url: "/api/session" };
const PENDING = { id: "0b7c9a52-1111-4e0e-9a4e-6f1c2d3e4f50", email: "carol@acme.test",
  role: "member", status: "pending", invited_by: "dev@acme.test", created_at: "2030-01-01T10:00:00Z",
  expires_at: "2030-01-08T10:00:00Z", accepted_at: null, declined_at: null, revoked_at: null };
const RECEIVED = { id: "r1", organization: GLOBEX, email: "dev@acme.test", role: "admin",
  invited_by: "owner@globex.test", created_at: "2030-01-01T10:00:00Z",
  expires_at: "2030-01-08T10:00:00Z" };

/** Every other call of the console (pages' lists, usage, extensions): empty answers. */
function quiet(call: Call): Answer {
  if (call.url.startsWith("/api/usage")) {
    return { body: { rows: [], group_by: ["day"], start: "2030-01-01", end: "2030-01-01" } };
  }
  if (call.url === "/api/extensions") return { body: { panels: [], features: [] } };
  return { body: { results: [], data: [] } };
}

describe("The page of an invitation's link", () => {
  it("shows that it is loading, then the server's failure with a way to try again", async () => {
    let answer: "never" | "fail" | "ok" = "never";
    fakeServer((call) => {
      if (call.url === "/api/session") return { body: SIGNED_OUT };
      if (call.url.startsWith("/api/invitations/token")) {
        return answer === "never" ? { never: true } : answer === "fail"
          ? { status: 502, text: "Bad gateway" } : { body: LINK };
      }
      return quiet(call);
    });
    const first = renderApp("/invitations?token=tok1");
    expect(await screen.findByText(/Loading the invitation/)).toBeInTheDocument();
    first.unmount();
    answer = "fail";
    renderApp("/invitations?token=tok1");
    expect(await screen.findByText(/The server answered 502/)).toBeInTheDocument();
    answer = "ok";
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Join Globex on Potluck" }))
      .toBeInTheDocument();
  });

  it.each([
    [409, { detail: "the invitation is expired" }, "This invitation has expired", /invite you again/],
    [409, { detail: "the invitation is revoked" }, "This invitation was withdrawn", /revoked it/],
    [409, { detail: "the invitation is accepted" }, "This invitation has already been accepted", /Sign in/],
    [404, { token: ["no such invitation"] }, "This invitation link does not work", /newer link/],
  ])("says clearly when the link no longer works (%s %j)", async (status, body, title, advice) => {
    const calls = fakeServer((call) => {
      if (call.url === "/api/session") return { body: SIGNED_OUT };
      if (call.url.startsWith("/api/invitations/token")) return { status, body };
      return quiet(call);
    });
    renderApp("/invitations?token=old");
    expect(await screen.findByRole("heading", { level: 1, name: title })).toBeInTheDocument();
    expect(screen.getByTestId("invitation-ended")).toHaveTextContent(advice);
    expect(screen.queryByLabelText("Password")).toBeNull();
    expect(screen.queryByRole("button", { name: "Decline" })).toBeNull();
    expect(calls.find((c) => c.url.startsWith("/api/invitations/token"))!.url)
      .toBe("/api/invitations/token?token=old");
  });

  it("lets someone new choose a password, signs them in and opens the console in the organization", async () => {
    let joined = false;
    const calls = fakeServer((call) => {
      if (call.url === "/api/session") return { body: joined ? NEW_SESSION : SIGNED_OUT };
      if (call.url.startsWith("/api/invitations/token")) return { body: LINK };
      if (call.url === "/api/invitations/accept") {
        const { password } = call.body as { password?: string };
        if (password === "short") {
          return { status: 400, body: { password: [
            "This password is too short. It must contain at least 8 characters."] } };
        }
        joined = true;
        return { body: JOINED };
      }
      return quiet(call);
    });
    renderApp("/invitations?token=tok1");
    expect(await screen.findByRole("heading", { level: 1, name: "Join Globex on Potluck" }))
      .toBeInTheDocument();
    expect(screen.getByTestId("invitation-summary")).toHaveTextContent(
      "owner@globex.test invites new@globex.test to join Globex as a member.");
    // A typo in the repeated password is caught before anything is sent.
    await userEvent.type(screen.getByLabelText("Password"), "short");
    await userEvent.type(screen.getByLabelText("Repeat the password"), "shorT");
    await userEvent.click(screen.getByRole("button", { name: "Create my account and join Globex" }));
    expect(await screen.findByText(/The two passwords differ/)).toBeInTheDocument();
    expect(calls.some((c) => c.url === "/api/invitations/accept")).toBe(false);
    // The server's judgement of the password, under the password.
    await userEvent.clear(screen.getByLabelText("Repeat the password"));
    await userEvent.type(screen.getByLabelText("Repeat the password"), "short");
    await userEvent.click(screen.getByRole("button", { name: "Create my account and join Globex" }));
    expect(await screen.findByText(/This password is too short/)).toBeInTheDocument();

    for (const box of ["Password", "Repeat the password"]) {
      await userEvent.clear(screen.getByLabelText(box));
      await userEvent.type(screen.getByLabelText(box), "correct horse battery");
    }
    await userEvent.click(screen.getByRole("button", { name: "Create my account and join Globex" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Overview" })).toBeInTheDocument();
    const accepts = calls.filter((c) => c.url === "/api/invitations/accept");
    expect(accepts.at(-1)!.body).toEqual({ token: "tok1", password: "correct horse battery" });
    expect(accepts.at(-1)!.method).toBe("POST");
    expect(accepts.at(-1)!.headers["X-CSRFToken"]).toBe("csrf-abc");
    const nav = screen.getByRole("navigation", { name: "Console" });
    expect(nav).toHaveTextContent("Globex (member)");
    expect(nav).toHaveTextContent("new@globex.test");
    await waitFor(() => expect(calls.at(-1)!.headers["X-Potluck-Organization"]).toBe("globex"));
  });

  it("asks someone with an account to sign in as it, then accepts signed in (no password sent)", async () => {
    let signedIn = false;
    let accepted = false;
    const person = { ...NEW_SESSION, organizations: [{ id: "o1", slug: "acme", name: "Acme", role: "owner" }] };
    const calls = fakeServer((call) => {
      if (call.url === "/api/session" && call.method === "POST") {
        signedIn = true;
        return { body: person };
      }
      if (call.url === "/api/session") {
        if (!signedIn) return { body: SIGNED_OUT };
        return { body: accepted ? { ...person, organizations: [...person.organizations,
          { ...GLOBEX, role: "member" }] } : person };
      }
      if (call.url.startsWith("/api/session/providers")) return { body: { providers: [] } };
      if (call.url.startsWith("/api/invitations/token")) return { body: { ...LINK, has_account: true } };
      if (call.url === "/api/invitations/accept") {
        accepted = true;
        return { body: JOINED };
      }
      return quiet(call);
    });
    renderApp("/invitations?token=tok1");
    expect(await screen.findByText(/already has a Potluck account: sign in/)).toBeInTheDocument();
    expect(screen.queryByLabelText("Repeat the password")).toBeNull();
    expect(screen.getByLabelText("Email or username")).toHaveValue("new@globex.test");
    await userEvent.type(screen.getByLabelText("Password"), "their password");
    await userEvent.click(screen.getByRole("button", { name: "Sign in to accept" }));
    await userEvent.click(await screen.findByRole("button", { name: "Accept and join Globex" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Overview" })).toBeInTheDocument();
    expect(calls.find((c) => c.url === "/api/invitations/accept")!.body).toEqual({ token: "tok1" });
    // The console opens in the organization just joined.
    expect(screen.getByLabelText("Organization")).toHaveValue("globex");
  });

  it("tells someone signed in as another person to sign out first", async () => {
    let signedOut = false;
    const calls = fakeServer((call) => {
      if (call.url === "/api/session" && call.method === "DELETE") {
        signedOut = true;
        return { status: 204 };
      }
      if (call.url === "/api/session") return { body: signedOut ? SIGNED_OUT : SESSION };
      if (call.url.startsWith("/api/invitations/token")) return { body: LINK };
      return quiet(call);
    });
    renderApp("/invitations?token=tok1");
    const notice = await screen.findByText(/but this invitation is for/);
    expect(notice).toHaveTextContent("You are signed in as dev@acme.test, but this invitation is for new@globex.test");
    expect(screen.queryByRole("button", { name: /Accept/ })).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByLabelText("Repeat the password")).toBeInTheDocument();
    expect(calls.some((c) => c.url === "/api/invitations/accept")).toBe(false);
  });

  it("declines only once confirmed, and says so", async () => {
    const calls = fakeServer((call) => {
      if (call.url === "/api/session") return { body: SIGNED_OUT };
      if (call.url.startsWith("/api/invitations/token")) return { body: LINK };
      if (call.url === "/api/invitations/decline") return { body: { ...PENDING, status: "declined" } };
      return quiet(call);
    });
    renderApp("/invitations?token=tok1");
    const decline = await screen.findByRole("button", { name: "Decline" });
    expect(decline).toHaveClass("danger");
    await userEvent.click(decline);
    const dialog = screen.getByRole("alertdialog", { name: "Decline the invitation to Globex?" });
    await userEvent.click(within(dialog).getByRole("button", { name: "Keep it" }));
    expect(calls.some((c) => c.url === "/api/invitations/decline")).toBe(false);
    await userEvent.click(decline);
    await userEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Decline" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Invitation declined" })).toBeInTheDocument();
    const post = calls.find((c) => c.url === "/api/invitations/decline")!;
    expect([post.method, post.body, post.headers["X-CSRFToken"]]).toEqual(["POST", { token: "tok1" }, "csrf-abc"]);
  });

  it("says the invitation ended when it expires between opening the link and accepting", async () => {
    fakeServer((call) => {
      if (call.url === "/api/session") return { body: SIGNED_OUT };
      if (call.url.startsWith("/api/invitations/token")) return { body: LINK };
      if (call.url === "/api/invitations/accept") {
        return { status: 409, body: { detail: "the invitation is expired" } };
      }
      return quiet(call);
    });
    renderApp("/invitations?token=tok1");
    await userEvent.type(await screen.findByLabelText("Password"), "correct horse battery");
    await userEvent.type(screen.getByLabelText("Repeat the password"), "correct horse battery");
    await userEvent.click(screen.getByRole("button", { name: "Create my account and join Globex" }));
    expect(await screen.findByRole("heading", { level: 1, name: "This invitation has expired" }))
      .toBeInTheDocument();
  });
});

describe("Invitations waiting for a signed-in person", () => {
  function server(received: unknown[] | "never" | "fail", extra?: (call: Call) => Answer | undefined) {
    return fakeServer((call) => {
      const answer = extra?.(call);
      if (answer) return answer;
      if (call.url === "/api/session") return { body: SESSION };
      if (call.url === "/api/invitations/received") {
        return received === "never" ? { never: true } : received === "fail"
          ? { status: 500, text: "<h1>Server Error (500)</h1>" } : { body: { results: received } };
      }
      return quiet(call);
    });
  }

  it("shows a badge in the layout only when some are waiting", async () => {
    server([RECEIVED, { ...RECEIVED, id: "r2", organization: { ...GLOBEX, id: "o3", name: "Initech" } }]);
    const shown = renderApp("/");
    const badge = await screen.findByTestId("invitations-badge");
    expect(badge).toHaveAccessibleName("Invitations (2 invitations waiting)");
    expect(badge).toHaveAttribute("href", "/invitations");
    expect(screen.getByTestId("invitations-badge-top")).toHaveTextContent("2 invitations");
    shown.unmount();
    server([]);
    renderApp("/");
    await screen.findByRole("heading", { level: 1, name: "Overview" });
    await waitFor(() => expect(screen.queryByTestId("invitations-badge")).toBeNull());
  });

  it("shows loading, then a failure with a way to try again, then the empty state", async () => {
    const first = server("never");
    const page = renderApp("/invitations");
    expect(await screen.findByText(/Loading invitations/)).toBeInTheDocument();
    expect(first.some((c) => c.url === "/api/invitations/received")).toBe(true);
    page.unmount();
    let failing = true;
    fakeServer((call) => {
      if (call.url === "/api/session") return { body: SESSION };
      if (call.url === "/api/invitations/received") {
        return failing ? { status: 500, text: "oops" } : { body: { results: [] } };
      }
      return quiet(call);
    });
    renderApp("/invitations");
    expect(await screen.findByText(/The server answered 500/)).toBeInTheDocument();
    failing = false;
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText("No invitation is waiting for you")).toBeInTheDocument();
    expect(document.title).toBe("Invitations · Potluck console");
  });

  it("accepts one, then offers to open that organization; declines only once confirmed", async () => {
    let left = [RECEIVED, { ...RECEIVED, id: "r2", organization: { id: "o3", slug: "initech", name: "Initech" } }];
    const calls = server([], (call) => {
      if (call.url === "/api/invitations/received") return { body: { results: left } };
      if (call.url === "/api/invitations/received/r1/accept") {
        left = left.filter((i) => i.id !== "r1");
        return { body: { organization: GLOBEX, role: "admin", email: "dev@acme.test" } };
      }
      if (call.url === "/api/invitations/received/r2/decline") {
        left = left.filter((i) => i.id !== "r2");
        return { body: {} };
      }
      return undefined;
    });
    renderApp("/invitations");
    await userEvent.click(await screen.findByRole("button", { name: "Accept the invitation to Globex" }));
    expect(await screen.findByText(/You joined/)).toHaveTextContent("You joined Globex as admin.");
    expect(screen.getByRole("button", { name: "Open Globex" })).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole("button", { name: "Accept the invitation to Globex" })).toBeNull());

    await userEvent.click(screen.getByRole("button", { name: "Decline the invitation to Initech" }));
    await userEvent.click(screen.getByRole("button", { name: "Keep it" }));
    expect(calls.some((c) => c.url.endsWith("/r2/decline"))).toBe(false);
    await userEvent.click(screen.getByRole("button", { name: "Decline the invitation to Initech" }));
    await userEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Decline" }));
    expect(await screen.findByText("No invitation is waiting for you")).toBeInTheDocument();
    const answers = calls.filter((c) => c.method === "POST").map((c) => c.url);
    expect(answers).toEqual(["/api/invitations/received/r1/accept", "/api/invitations/received/r2/decline"]);
  });

  it("someone in no organization sees their invitations; accepting opens the console there", async () => {
    let joined = false;
    const lonely = { ...SESSION, organizations: [] };
    fakeServer((call) => {
      if (call.url === "/api/session") {
        return { body: joined ? { ...SESSION, organizations: [{ ...GLOBEX, role: "admin" }] } : lonely };
      }
      if (call.url === "/api/invitations/received") return { body: { results: joined ? [] : [RECEIVED] } };
      if (call.url === "/api/invitations/received/r1/accept") {
        joined = true;
        return { body: { organization: GLOBEX, role: "admin", email: "dev@acme.test" } };
      }
      return quiet(call);
    });
    renderApp("/");
    expect(await screen.findByRole("heading", { level: 1, name: "Welcome to Potluck" })).toBeInTheDocument();
    await userEvent.click(await screen.findByRole("button", { name: "Accept the invitation to Globex" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Overview" })).toBeInTheDocument();
    expect(screen.getByRole("navigation", { name: "Console" })).toHaveTextContent("Globex (admin)");
  });

  it("someone in no organization and with no invitation is told how to get in", async () => {
    fakeServer((call) => (call.url === "/api/session"
      ? { body: { ...SESSION, organizations: [] } } : { body: { results: [] } }));
    renderApp("/");
    expect(await screen.findByText("You are not a member of any organization")).toBeInTheDocument();
    expect(screen.getByText(/Ask an admin of your organization to invite/)).toHaveTextContent("dev@acme.test");
  });
});

describe("Members: inviting", () => {
  function membersServer(handler: (call: Call) => Answer | undefined) {
    return fakeServer((call) => handler(call) ?? (call.url.startsWith("/api/members")
      ? { body: { results: [{ id: "p1", email: "dev@acme.test", role: "owner", created_at: "" }] } }
      : quiet(call)));
  }

  it.each([
    ["not_configured", /this server does not send email/],
    ["failed", /the email could not be sent/],
  ])("when mail is %s, names the operator's command that makes the link", async (delivery, said) => {
    const calls = membersServer((call) => (call.url === "/api/invitations" && call.method === "POST"
      ? { status: 201, body: { ...PENDING, delivery } } : undefined));
    renderPage(<Members />);
    await userEvent.type(await screen.findByLabelText("Email"), "carol@acme.test");
    await userEvent.selectOptions(screen.getByLabelText("Role"), "viewer");
    await userEvent.click(screen.getByRole("button", { name: "Invite" }));
    const told = await screen.findByTestId("invite-delivery");
    expect(told).toHaveTextContent(said);
    expect(screen.getByTestId("link-command")).toHaveTextContent(`potluck invitations link ${PENDING.id}`);
    expect(calls.find((c) => c.method === "POST")!.body).toEqual({ email: "carol@acme.test", role: "viewer" });
    expect(screen.getByLabelText("Email")).toHaveValue("");
    expect(screen.queryByText(/set-password/)).toBeNull();
  });

  it("says the invitation was emailed when it was", async () => {
    membersServer((call) => (call.url === "/api/invitations" && call.method === "POST"
      ? { status: 201, body: { ...PENDING, delivery: "sent" } } : undefined));
    renderPage(<Members />);
    await userEvent.type(await screen.findByLabelText("Email"), "carol@acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Invite" }));
    expect(await screen.findByTestId("invite-delivery")).toHaveTextContent("Invitation emailed to carol@acme.test");
    expect(screen.queryByTestId("link-command")).toBeNull();
  });

  it("shows an already-member refusal under the email", async () => {
    membersServer((call) => (call.url === "/api/invitations" && call.method === "POST"
      ? { status: 409, body: { email: ["dev@acme.test is already a member"] } } : undefined));
    renderPage(<Members />);
    await userEvent.type(await screen.findByLabelText("Email"), "dev@acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Invite" }));
    expect(await screen.findByText("dev@acme.test is already a member")).toHaveAttribute("id", "invite-email-error");
  });

  it("lists pending invitations (loading, empty) and revokes one only once confirmed", async () => {
    let pending: unknown[] | null = null;
    const calls = membersServer((call) => {
      if (call.url === "/api/invitations?status=pending") {
        return pending === null ? { never: true } : { body: { count: pending.length, results: pending } };
      }
      if (call.url === `/api/invitations/${PENDING.id}` && call.method === "DELETE") {
        pending = [];
        return { body: { ...PENDING, status: "revoked" } };
      }
      return undefined;
    });
    const first = renderPage(<Members />);
    expect(await screen.findByText(/Loading invitations/)).toBeInTheDocument();
    first.unmount();
    pending = [PENDING];
    renderPage(<Members />);
    const table = await screen.findByRole("table", { name: "Pending invitations" });
    expect(table).toHaveTextContent("carol@acme.test");
    expect(table).toHaveTextContent("dev@acme.test");
    const revoke = within(table).getByRole("button", { name: "Revoke the invitation of carol@acme.test" });
    expect(revoke).toHaveClass("danger");
    await userEvent.click(revoke);
    expect(screen.getByRole("alertdialog", { name: "Revoke the invitation of carol@acme.test?" }))
      .toHaveTextContent("Its link stops working");
    await userEvent.click(screen.getByRole("button", { name: "Keep it" }));
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);
    await userEvent.click(revoke);
    await userEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Revoke" }));
    expect(await screen.findByText("No pending invitation")).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "DELETE").map((c) => c.url)).toEqual([`/api/invitations/${PENDING.id}`]);
  });

  it("says when the pending invitations cannot be loaded, and tries again", async () => {
    let failing = true;
    membersServer((call) => (call.url.startsWith("/api/invitations")
      ? (failing ? { status: 500, text: "oops" } : { body: { results: [] } }) : undefined));
    renderPage(<Members />);
    expect(await screen.findByText(/The server answered 500/)).toBeInTheDocument();
    failing = false;
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText("No pending invitation")).toBeInTheDocument();
  });
});
