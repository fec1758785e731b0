# SPDX-License-Identifier: Apache-2.0
"""Why the core did not serve a request, as an OpenAI error (status, type, code, param).

The gateway sends it as the HTTP answer; a batch line records it in its error file.
"""

from __future__ import annotations

import orjson

from potluck.inference.context import RequestContext
from potluck.protocol.endpoints import Endpoint
from potluck.protocol.errors import error_body

_PATHS = {"chat": "chat/completions", "completions": "completions", "embeddings": "embeddings"}


class InferenceError(Exception):
    """An OpenAI-shaped refusal or failure: ``status`` (HTTP), ``type`` (OpenAI's error
    type), ``param`` (the body field at fault), ``code`` and extra response ``headers``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or []

    def as_dict(self) -> dict:
        return error_body(self.message, status=self.status, param=self.param, code=self.code,
                          type=self.type)

    def body(self) -> bytes:
        return orjson.dumps(self.as_dict())


def bad_request(message: str, param: str | None = None, code: str | None = None
                ) -> InferenceError:
    return InferenceError(400, message, param=param, code=code)


def unauthorized(message: str = "Incorrect API key provided.") -> InferenceError:
    return InferenceError(401, message, type="authentication_error", code="invalid_api_key",
                          headers=[(b"www-authenticate", b'Bearer realm="potluck"')])


def model_not_deployed(name: str) -> InferenceError:
    """The model is registered (for this organization, or public) but nothing serves it."""
    return InferenceError(404, f"The model '{name}' exists but is not deployed: deploy it "
                          "(potluck deploy, or POST /api/deployments) to call it.",
                          param="model", code="model_not_deployed")


def unsupported_endpoint(name: str, endpoint: Endpoint, capabilities: frozenset[str]
                         ) -> InferenceError:
    """The model does not serve this endpoint (e.g. embeddings from a chat model)."""
    serves = ", ".join(sorted(f"/v1/{_PATHS[c]}" for c in capabilities if c in _PATHS))
    return InferenceError(400, f"The model '{name}' does not serve {endpoint.path}"
                          f"{'; it serves ' + serves if serves else ''}.", param="model",
                          code="unsupported_endpoint")


def from_replica(status: int, raw: bytes, ctx: RequestContext) -> bytes:
    """A replica's error answer as an OpenAI error object, whatever shape it came in
    (vLLM's ``{"error": {...}}`` with its own ``type``, FastAPI's ``{"detail": ...}`` for a
    route it lacks, or plain text). The message is kept; ``type`` follows the status, as
    OpenAI's does; ``code`` is kept when it is a string."""
    message, code, param = "", None, None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            code = error.get("code") if isinstance(error.get("code"), str) else None
            param = error.get("param") if isinstance(error.get("param"), str) else None
        elif isinstance(body.get("message"), str):  # vLLM's older ErrorResponse
            message = body["message"]
        elif body.get("detail") is not None:  # FastAPI: e.g. a route the server lacks
            message = str(body["detail"])
    elif raw:
        message = raw.decode("utf-8", "replace").strip()[:500]
    if status == 404 and message == "Not Found" and ctx.endpoint is not None:
        message = f"The model's replica does not serve {ctx.endpoint.path}."
        code = code or "unsupported_endpoint"
    if not message:
        message = f"The model's replica answered {status}."
    if code is None and status >= 500:
        code = "upstream_error"
    return orjson.dumps(error_body(message, status=status, param=param, code=code))


def model_not_found(name: str) -> InferenceError:
    return InferenceError(404, f"The model '{name}' does not exist or you do not have "
                          "access to it.", param="model", code="model_not_found")


def rate_limited(message: str, retry_after: int, code: str = "rate_limit_exceeded"
                 ) -> InferenceError:
    return InferenceError(429, message, type="rate_limit_error", code=code,
                          headers=[(b"retry-after", str(retry_after).encode())])


def no_replica(model: str, retry_after: int = 5) -> InferenceError:
    return InferenceError(503, f"The model '{model}' has no ready replica right now; retry "
                          "shortly.", type="server_error", code="model_not_ready",
                          headers=[(b"retry-after", str(retry_after).encode())])


def upstream_failed(message: str, *, timeout: bool = False) -> InferenceError:
    return InferenceError(504 if timeout else 502, message, type="server_error",
                          code="upstream_timeout" if timeout else "upstream_error")


def policy_failed(policy: str) -> InferenceError:
    """A fail-closed policy broke: the request is not served (never unfiltered)."""
    return InferenceError(500, f"The request could not be checked by the '{policy}' policy; "
                          "it was not served.", type="server_error", code="policy_error")
