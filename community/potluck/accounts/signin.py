# SPDX-License-Identifier: Apache-2.0
"""Password sign-in: the one path, with the login policies and throttling.

``sign_in`` is the only way a password is checked. ``OneSignInPath``, the first of the
``AUTHENTICATION_BACKENDS``, refuses password authentication that does not come
through it, so Django's admin login form, DRF's browsable-API login or any view added
later cannot skip the login policies (SSO enforcement) or the throttle.

Throttling (OWASP's "slow down online guessing"): every attempt counts as a failure
until its password is accepted, atomically in Redis, so parallel guesses are counted
too. Failures are counted per account (whether it exists or not, so the answers do not
tell them apart) and per client address (IPv6 by /64); past a number of free failures
each further attempt must wait a delay that doubles, up to ``SIGNIN_MAX_DELAY_SECONDS``,
and the refusal is a 429 with ``Retry-After``. Counters are forgotten
``SIGNIN_FAILURE_WINDOW_SECONDS`` after the last failure; a successful sign-in clears the
account's. No lock-out is permanent: a delay never exceeds the maximum, and a browser
that signed in to the account before carries a signed device cookie with which it is
throttled on its own (per device), not by the account's or the address's counters, so
an attacker hammering an account cannot keep its owner out (OWASP's device cookies).
The operator clears an account's counter with ``potluck users unlock``.
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.backends import BaseBackend
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from potluck import extensions
from potluck.accounts.models import User
from potluck.redis_client import get_redis

log = logging.getLogger(__name__)

DEVICE_COOKIE = "potluck_device"
_DEVICE_SALT = "potluck.accounts.signin.device"
_KEY = "potluck:signin:{kind}:{id}"
_signing_in: contextvars.ContextVar[bool] = contextvars.ContextVar("potluck_signing_in",
                                                                  default=False)

# KEYS: counters. ARGV: now, base delay, max delay, ttl, then each key's free failures.
# Returns 0 when the attempt may go ahead (it is counted), else the seconds to wait.
_ATTEMPT = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local blocked = tonumber(redis.call('HGET', key, 'until') or '0')
  if blocked - now > wait then wait = blocked - now end
end
if wait > 0 then return tostring(wait) end
local base, cap, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i, key in ipairs(KEYS) do
  local n = redis.call('HINCRBY', key, 'n', 1)
  local free = tonumber(ARGV[4 + i])
  if n > free then
    local delay = math.min(base * 2 ^ (n - free - 1), cap)
    redis.call('HSET', key, 'until', tostring(now + delay))
  end
  redis.call('EXPIRE', key, ttl)
end
return 0
"""


class InvalidCredentials(Exception):
    """Unknown account, wrong password or inactive account: the same to the caller."""


class SignInThrottled(Exception):
    """Too many failed sign-ins: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"too many failed sign-ins; try again in {retry_after} {unit}")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Attempt:
    """One password sign-in attempt: what it is counted under."""

    keys: list[str]
    free: list[int]
    account_key: str
    address_key: str | None
    device_key: str | None


class OneSignInPath(BaseBackend):
    """The first authentication backend: a password is checked only inside ``sign_in``.

    Raising ``PermissionDenied`` makes ``django.contrib.auth.authenticate`` stop before
    the password backend (``ModelBackend``, which stays for sessions and permissions).
    """

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        if "password" in credentials and not _signing_in.get():
            raise PermissionDenied("password sign-in goes through POST /api/session")
        return None


def client_address(request: HttpRequest) -> str:
    """The client's address as the throttle counts it: IPv4 as is, IPv6 by its /64.

    ``REMOTE_ADDR`` is the peer, or the client a trusted proxy names (uvicorn applies
    ``X-Forwarded-For`` from the addresses in ``FORWARDED_ALLOW_IPS``).
    """
    raw = (request.META.get("REMOTE_ADDR") or "").strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def _now() -> float:
    """Seconds since the epoch (the web servers' clocks; a function, so tests can move it)."""
    return time.time()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def account_key(user: User | None, identifier: str) -> str:
    """The account's counter: by user id when it exists, else by the name tried."""
    who = f"user:{user.pk}" if user is not None else f"name:{identifier.strip().lower()}"
    return _KEY.format(kind="account", id=_digest(who))


def _device_nonce(request: HttpRequest, user: User | None) -> str | None:
    """The nonce of a valid device cookie that ``user`` was given, or None."""
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw or user is None:
        return None
    try:
        data = signing.loads(raw, salt=_DEVICE_SALT,
                             max_age=settings.SIGNIN_DEVICE_COOKIE_DAYS * 86400)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.pk:
        return None
    nonce = data.get("d")
    return nonce if isinstance(nonce, str) and nonce else None


def _attempt_for(request: HttpRequest, user: User | None, identifier: str) -> Attempt:
    account = account_key(user, identifier)
    nonce = _device_nonce(request, user)
    if nonce is not None:
        device = _KEY.format(kind="device", id=_digest(nonce))
        return Attempt([device], [settings.SIGNIN_FREE_FAILURES_PER_ACCOUNT], account, None,
                       device)
    address = _KEY.format(kind="address", id=_digest(client_address(request)))
    return Attempt([account, address], [settings.SIGNIN_FREE_FAILURES_PER_ACCOUNT,
                                        settings.SIGNIN_FREE_FAILURES_PER_ADDRESS],
                   account, address, None)


def _count(attempt: Attempt) -> None:
    """Count the attempt, or raise ``SignInThrottled`` if one of its counters is waiting."""
    wait = get_redis().register_script(_ATTEMPT)(keys=attempt.keys, args=[
        repr(_now()), settings.SIGNIN_BASE_DELAY_SECONDS,
        settings.SIGNIN_MAX_DELAY_SECONDS, settings.SIGNIN_FAILURE_WINDOW_SECONDS,
        *attempt.free])
    seconds = float(wait or 0)
    if seconds > 0:
        raise SignInThrottled(max(1, math.ceil(seconds)))


def _succeeded(attempt: Attempt) -> None:
    """A right password clears the account's (or device's) counter; the address's only
    loses this attempt, so an attacker cannot wipe it by signing in to their own account."""
    pipe = get_redis().pipeline()
    pipe.delete(attempt.account_key)
    if attempt.device_key:
        pipe.delete(attempt.device_key)
    if attempt.address_key:
        pipe.hincrby(attempt.address_key, "n", -1)
    pipe.execute()


def find_user(email: str | None, username: str | None) -> User | None:
    if email:
        return User.objects.filter(email__iexact=email.strip()).first()
    return User.objects.filter(username=(username or "").strip()).first()


def sign_in(request: HttpRequest, *, email: str = "", username: str = "",
            password: str) -> User:
    """Check a password sign-in; returns the user (not yet logged in: see ``login``).

    Order: the login policies (``extensions.login_policies``, e.g. SSO enforced for the
    email's domain: ``potluck.errors.Forbidden``), then the throttle
    (``SignInThrottled``), then the password (``InvalidCredentials``).
    """
    user = find_user(email, username)
    # Policies judge the address, so an enforced domain is refused whether or not the
    # account exists, before the password is looked at.
    checked_email = email or (user.email if user is not None else "")
    if checked_email:
        extensions.check_login_policies(checked_email)
    attempt = _attempt_for(request, user, email or username)
    _count(attempt)
    token = _signing_in.set(True)
    try:
        # An unknown user still costs one password hash (ModelBackend does it).
        signed_in = authenticate(
            request, username=user.get_username() if user is not None else (username or email),
            password=password)
    finally:
        _signing_in.reset(token)
    if signed_in is None:
        log.info("password sign-in refused (account %s)", attempt.account_key[-8:])
        raise InvalidCredentials()
    _succeeded(attempt)
    return signed_in


def remember_device(response: HttpResponse, request: HttpRequest, user: User) -> None:
    """Give this browser a device cookie for ``user`` (after a successful sign-in)."""
    value = signing.dumps({"u": user.pk, "d": secrets.token_urlsafe(16)}, salt=_DEVICE_SALT)
    response.set_cookie(DEVICE_COOKIE, value,
                        max_age=settings.SIGNIN_DEVICE_COOKIE_DAYS * 86400, httponly=True,
                        samesite="Lax", path="/api/session",
                        secure=settings.SESSION_COOKIE_SECURE or request.is_secure())


def unlock(user: User) -> None:
    """Forget the account's failed sign-ins (the operator's ``potluck users unlock``)."""
    get_redis().delete(account_key(user, ""))
