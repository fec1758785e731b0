# SPDX-License-Identifier: Apache-2.0
"""Why the core did not serve a request, as an OpenAI error (status, type, code, param).

The gateway sends it as the HTTP answer; a batch line records it in its error file.
"""

from __future__ import annotations

import orjson

from potluck.protocol.errors import error_body


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
