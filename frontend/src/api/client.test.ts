// SPDX-License-Identifier: Apache-2.0
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, errorFromBody, items, parseRetryAfter, setOrganization } from "./client";
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

describe("parseRetryAfter", () => {
  it("reads seconds or an HTTP date (RFC 9110), and nothing else", () => {
    expect(parseRetryAfter("17")).toBe(17);
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter("Mon, 31 Dec 2029 23:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
  });

  it("comes with the error of a throttled call", async () => {
    fakeServer(() => ({ status: 429, headers: { "Retry-After": "12" },
      body: { detail: "too many failed sign-ins; try again in 12 seconds" } }));
    const error = await api("/api/session", { method: "POST", body: {} })
      .catch((e: unknown) => e) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect([error.status, error.retryAfter, error.message])
      .toEqual([429, 12, "too many failed sign-ins; try again in 12 seconds"]);
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
