// SPDX-License-Identifier: Apache-2.0
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, errorFromBody, items, setOrganization } from "./client";
import { fakeServer } from "../test-utils";

afterEach(() => { vi.unstubAllGlobals(); setOrganization(null); });

describe("errorFromBody", () => {
  it("keeps DRF's field errors per field", () => {
    const error = errorFromBody(400, { path: ["no config.json in /srv/x"], name: ["taken"] });
    expect(error.fields).toEqual({ path: "no config.json in /srv/x", name: "taken" });
    expect(error.message).toBe("path: no config.json in /srv/x; name: taken");
  });

  it("reads DRF's detail and OpenAI's error shape", () => {
    expect(errorFromBody(403, { detail: "your role does not allow this" }).message)
      .toBe("your role does not allow this");
    const openai = errorFromBody(400, { error: { message: "line 3: no assistant message",
      type: "invalid_request_error", param: "file", code: null } });
    expect(openai.message).toBe("line 3: no assistant message");
    expect(openai.fields).toEqual({ file: "line 3: no assistant message" });
  });

  it("says how to fix it when the body says nothing", () => {
    expect(errorFromBody(401, null).message).toMatch(/sign in again/);
    expect(errorFromBody(502, "oops").message).toMatch(/502/);
  });
});

describe("api", () => {
  it("sends the CSRF token on writes and the organization on every call", async () => {
    document.cookie = "csrftoken=tok123";
    setOrganization("acme");
    const calls = fakeServer(() => ({ status: 201, body: { id: "k1" } }));
    await api("/api/keys", { method: "POST", body: { name: "x" } });
    await api("/api/keys");
    expect(calls[0].headers["X-CSRFToken"]).toBe("tok123");
    expect(calls[0].headers["X-Potluck-Organization"]).toBe("acme");
    expect(calls[0].body).toEqual({ name: "x" });
    expect(calls[1].headers["X-CSRFToken"]).toBeUndefined();
    expect(calls[1].headers["X-Potluck-Organization"]).toBe("acme");
  });

  it("throws an ApiError with the server's message", async () => {
    fakeServer(() => ({ status: 404, body: { detail: "no organization named 'x'" } }));
    await expect(api("/api/me")).rejects.toEqual(new ApiError(404, "no organization named 'x'"));
  });

  it("says when the server cannot be reached", async () => {
    vi.stubGlobal("fetch", async () => { throw new TypeError("Failed to fetch"); });
    await expect(api("/api/me")).rejects.toThrow(/Cannot reach the Potluck server/);
  });

  it("reads DRF and OpenAI lists alike", () => {
    expect(items({ results: [1, 2] })).toEqual([1, 2]);
    expect(items({ data: [3] })).toEqual([3]);
  });
});
