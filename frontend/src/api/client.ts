// SPDX-License-Identifier: Apache-2.0
/** The console's one way to the server: the same /api and /v1 endpoints the CLI uses. */

export type FieldErrors = Record<string, string>;

/** A failed call, with what went wrong as the server said it, per field where it can. */
export class ApiError extends Error {
  readonly status: number;
  readonly fields: FieldErrors;
  /** OpenAI's error `code` where the server gave one (e.g. "model_not_deployed"). */
  readonly code: string | null;
  /** Seconds to wait before asking again (the answer's `Retry-After`), where it said. */
  readonly retryAfter: number | null;

  constructor(status: number, message: string, fields: FieldErrors = {},
    code: string | null = null, retryAfter: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * `Retry-After` in seconds: RFC 9110 allows a number of seconds or an HTTP date. Null when
 * absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - now) / 1000));
}

const HINTS: Record<number, string> = {
  401: "Your session has ended: sign in again.",
  403: "Your role does not allow this: ask an admin of the organization.",
  404: "It no longer exists, or belongs to another organization.",
  429: "Too many requests: wait a moment and try again.",
};

function firstMessage(value: unknown): string {
  if (Array.isArray(value)) return value.length ? firstMessage(value[0]) : "";
  if (value && typeof value === "object") {
    const first = Object.values(value as Record<string, unknown>)[0];
    return firstMessage(first);
  }
  return value == null ? "" : String(value);
}

/**
 * DRF's `{field: [msg]}` / `{detail}` and OpenAI's `{error: {message, param}}`, as one error;
 * `retryAfter` (seconds) is the answer's `Retry-After`, e.g. of a throttled sign-in (429).
 */
export function errorFromBody(status: number, body: unknown,
  retryAfter: number | null = null): ApiError {
  if (body && typeof body === "object") {
    const data = body as Record<string, unknown>;
    const openai = data.error;
    if (openai && typeof openai === "object") {
      const { message, param, code } = openai as {
        message?: string; param?: string | null; code?: string | null };
      const text = message || `request failed (${status})`;
      return new ApiError(status, text, param ? { [param]: text } : {}, code ?? null,
        retryAfter);
    }
    if (typeof data.detail === "string") {
      return new ApiError(status, data.detail, {}, null, retryAfter);
    }
    const fields: FieldErrors = {};
    for (const [name, value] of Object.entries(data)) fields[name] = firstMessage(value);
    const names = Object.keys(fields);
    if (names.length) {
      const summary = names
        .map((n) => (n === "non_field_errors" ? fields[n] : `${n}: ${fields[n]}`))
        .join("; ");
      return new ApiError(status, summary, fields, null, retryAfter);
    }
  }
  return new ApiError(status, HINTS[status] ?? `The server answered ${status}: try again.`,
    {}, null, retryAfter);
}

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

let currentOrg: string | null = null;
let onUnauthorized: (() => void) | null = null;

/** Called when a session call answers 401: the session has ended (expired, signed out
 * elsewhere). The console then shows sign-in, and the page again afterwards. */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

/** The organization (slug) every call acts in; sent as X-Potluck-Organization. */
export function setOrganization(slug: string | null): void {
  currentOrg = slug;
}

export function getOrganization(): string | null {
  return currentOrg;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  form?: FormData;
  query?: Record<string, string | number | undefined>;
  accept?: string;
}

export function buildUrl(path: string, query?: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** A session call: cookies, CSRF token on writes, the org header. */
export async function rawRequest(path: string, options: RequestOptions = {}): Promise<Response> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { Accept: options.accept ?? "application/json" };
  let body: BodyInit | undefined;
  if (options.form) {
    body = options.form;
  } else if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  if (method !== "GET" && method !== "HEAD") {
    const token = readCookie("csrftoken");
    if (token) headers["X-CSRFToken"] = token;
  }
  if (currentOrg) headers["X-Potluck-Organization"] = currentOrg;
  let response: Response;
  try {
    response = await fetch(buildUrl(path, options.query), {
      method, headers, body, credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "Cannot reach the Potluck server: check that it is running.");
  }
  if (!response.ok) {
    let parsed: unknown = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
    // /api/session itself answers who is signed in; any other 401 means the session ended.
    if (response.status === 401 && !path.startsWith("/api/session") && onUnauthorized) {
      onUnauthorized();
      throw new ApiError(401, HINTS[401]);
    }
    throw errorFromBody(response.status, parsed,
      parseRetryAfter(response.headers.get("Retry-After")));
  }
  return response;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await rawRequest(path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** DRF lists are paginated ({results}); OpenAI lists are {data}. Either gives the items. */
export function items<T>(page: { results?: T[]; data?: T[] } | T[]): T[] {
  if (Array.isArray(page)) return page;
  return page.results ?? page.data ?? [];
}
