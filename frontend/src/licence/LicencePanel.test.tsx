// SPDX-License-Identifier: Apache-2.0
import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeServer, renderPage, SESSION } from "../test-utils";
import { Enterprise } from "../pages/Enterprise";
import type { LicenceStatus } from "./types";

afterEach(() => vi.unstubAllGlobals());

const NONE: LicenceStatus = {
  installed: false, state: "none", warnings: [], seats_used: 3, seats: null, seats_limit: null,
  license_id: null, licensee: null, organization: null, features: [], issued_at: null,
  expires_at: null, grace_days: null, grace_ends_at: null, installed_at: null,
  installed_by: null, installation_id: "inst_abcdefghijklmnopqrstuvwxyz",
  bound_to: null, days_left: null, expiry_notice: null,
  store_url: "https://store.example/store/?installation_id=inst_abcdefghijklmnopqrstuvwxyz&seats=3",
  online_renewal: { enabled: true, checked_at: null, outcome: null },
};

const INSTALLED: LicenceStatus = {
  ...NONE, installed: true, state: "active", license_id: "lic-42", licensee: "Acme Corp",
  seats: 10, seats_limit: 11, expires_at: "2027-06-01T00:00:00Z", grace_days: 14,
  grace_ends_at: "2027-06-15T00:00:00Z", bound_to: "inst_abcdefghijklmnopqrstuvwxyz",
  days_left: 120, features: [{ key: "sso", title: "Single sign-on (OIDC, SAML)", enabled: true }],
};

const PANELS = { panels: [{ key: "licence", title: "Licence", api_path: "/api/license",
  description: "" }], features: [] };

function server(status: LicenceStatus, superuser: boolean, post?: (body: unknown) => {
  status?: number; body?: unknown }) {
  return fakeServer((call) => {
    if (call.url === "/api/extensions") return { body: PANELS };
    if (call.url === "/api/session") {
      return { body: { ...SESSION, user: { ...SESSION.user, is_superuser: superuser } } };
    }
    if (call.url === "/api/license" && call.method === "POST" && post) return post(call.body);
    if (call.url === "/api/license/renew") {
      return { body: { status: "current", detail: "no newer licence yet", license_id: null } };
    }
    return { body: status };
  });
}

describe("Licence panel", () => {
  it("shows the installation id and a store link that carries it and the seats", async () => {
    server(NONE, false);
    renderPage(<Enterprise />);
    expect(await screen.findByTestId("installation-id")).toHaveTextContent(
      "inst_abcdefghijklmnopqrstuvwxyz");
    const link = screen.getByRole("link", { name: "Buy a licence or start a free trial" });
    expect(link).toHaveAttribute("href", NONE.store_url);
    expect(screen.getByText(/No licence is installed/)).toBeInTheDocument();
    expect(screen.getByText("3 in use")).toBeInTheDocument();
    // Not an operator: no install form, the way to do it instead.
    expect(screen.queryByRole("form", { name: "Install a licence" })).toBeNull();
    expect(screen.getByText(/potluck license install FILE/)).toBeInTheDocument();
  });

  it("shows features, seats used of granted, expiry, grace and the binding", async () => {
    server(INSTALLED, false);
    renderPage(<Enterprise />);
    const features = await screen.findByRole("list", { name: "Licensed features" });
    expect(within(features).getByText(/Single sign-on/)).toHaveTextContent("on");
    expect(screen.getByText("3 used of 10 (adding members stops at 11)")).toBeInTheDocument();
    expect(screen.getByText("2027-06-01")).toBeInTheDocument();
    expect(screen.getByText("14 days, until 2027-06-15")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Upgrade or renew in the store" })).toBeInTheDocument();
    expect(screen.queryByTestId("expiry-warning")).toBeNull();
  });

  it("warns 30 days before expiry, and urgently from 7", async () => {
    const seats = "12 people use seats, more than the licence's 10; adding members is refused past 11";
    server({ ...INSTALLED, state: "expiring", days_left: 25, expiry_notice: "30_days",
      warnings: ["the licence expires in 25 days, on 2027-06-01", seats] }, false);
    const first = renderPage(<Enterprise />);
    const notice = await screen.findByTestId("expiry-warning");
    expect(notice).toHaveAttribute("role", "status");
    expect(notice).toHaveTextContent("expires in 25 days, on 2027-06-01");
    // The server's other warnings are listed; its expiry warning only once, as the banner.
    const listed = screen.getByRole("list", { name: "Licence warnings" });
    expect(within(listed).getAllByRole("listitem").map((li) => li.textContent)).toEqual([seats]);
    first.unmount();

    server({ ...INSTALLED, state: "expiring", days_left: 1, expiry_notice: "7_days" }, false);
    renderPage(<Enterprise />);
    const urgent = await screen.findByTestId("expiry-warning");
    expect(urgent).toHaveAttribute("role", "alert");
    expect(urgent).toHaveTextContent("Only 1 day left");
  });

  it("installs a pasted licence, and shows the verifier's reason when it refuses", async () => {
    const reason = "this licence is bound to installation inst_other0000000, and this is "
      + "installation inst_abcdefghijklmnopqrstuvwxyz: get a licence issued for it";
    let attempts = 0;
    const calls = server(NONE, true, () => {
      attempts += 1;
      return attempts === 1 ? { status: 400, body: { license: [reason] } }
        : { status: 201, body: INSTALLED };
    });
    renderPage(<Enterprise />);
    const text = await screen.findByLabelText("Paste the licence");
    await userEvent.type(text, "-----BEGIN POTLUCK LICENSE-----");
    await userEvent.click(screen.getByRole("button", { name: "Install licence" }));
    expect(await screen.findByTestId("licence-refused")).toHaveTextContent(`Not installed: ${reason}`);

    await userEvent.click(screen.getByRole("button", { name: "Install licence" }));
    expect(await screen.findByTestId("licence-installed")).toHaveTextContent(
      "Installed licence lic-42 for Acme Corp");
    const posts = calls.filter((c) => c.method === "POST" && c.url === "/api/license");
    expect(posts.map((c) => c.body)).toEqual([
      { license: "-----BEGIN POTLUCK LICENSE-----" }, { license: "-----BEGIN POTLUCK LICENSE-----" }]);
    await waitFor(() => expect(screen.getByText("3 used of 10 (adding members stops at 11)"))
      .toBeInTheDocument());
  });

  it("uploads a licence file as multipart form data", async () => {
    const calls = server(NONE, true, () => ({ status: 201, body: INSTALLED }));
    renderPage(<Enterprise />);
    const input = await screen.findByLabelText("or upload the file");
    const file = new File(["-----BEGIN POTLUCK LICENSE-----\n"], "acme.license",
      { type: "text/plain" });
    await userEvent.upload(input, file);
    expect(screen.getByLabelText("Paste the licence")).toBeDisabled();
    await userEvent.click(screen.getByRole("button", { name: "Install licence" }));
    expect(await screen.findByTestId("licence-installed")).toBeInTheDocument();
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.body).toBeInstanceOf(FormData);
    expect((post.body as FormData).get("license")).toBeInstanceOf(File);
  });

  it("asks the store for a renewal on demand", async () => {
    const calls = server(INSTALLED, true);
    renderPage(<Enterprise />);
    await userEvent.click(await screen.findByRole("button", { name: "Check for a renewal now" }));
    expect(await screen.findByText("current: no newer licence yet")).toBeInTheDocument();
    expect(calls.some((c) => c.method === "POST" && c.url === "/api/license/renew")).toBe(true);
  });
});
