# SPDX-License-Identifier: Apache-2.0
"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import orjson


class GatewayError(Exception):
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

    def body(self) -> bytes:
        return orjson.dumps({"error": {"message": self.message, "type": self.type,
                                       "param": self.param, "code": self.code}})


def bad_request(message: str, param: str | None = None, code: str | None = None
                ) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def unauthorized(message: str = "Incorrect API key provided.") -> GatewayError:
    return GatewayError(401, message, type="authentication_error", code="invalid_api_key",
                        headers=[(b"www-authenticate", b'Bearer realm="potluck"')])


def model_not_found(name: str) -> GatewayError:
    return GatewayError(404, f"The model '{name}' does not exist or you do not have access "
                        "to it.", param="model", code="model_not_found")


def rate_limited(message: str, retry_after: int) -> GatewayError:
    return GatewayError(429, message, type="rate_limit_error", code="rate_limit_exceeded",
                        headers=[(b"retry-after", str(retry_after).encode())])


def no_replica(model: str, retry_after: int = 5) -> GatewayError:
    return GatewayError(503, f"The model '{model}' has no ready replica right now; retry "
                        "shortly.", type="server_error", code="model_not_ready",
                        headers=[(b"retry-after", str(retry_after).encode())])


def upstream_failed(message: str, *, timeout: bool = False) -> GatewayError:
    return GatewayError(504 if timeout else 502, message, type="server_error",
                        code="upstream_timeout" if timeout else "upstream_error")
