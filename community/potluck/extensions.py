# SPDX-License-Identifier: Apache-2.0
"""Extension points: how editions and plug-ins add behaviour without core knowing them.

Community code declares each hook here and calls it; it never knows who registered
an implementation. The enterprise edition (or any plug-in) registers from its
``AppConfig.ready()``, and only for the features its licence grants.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry(Generic[T]):
    """An ordered, thread-safe set of named implementations of one hook."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()
        # Bumped on every change, so a reader can cache what it derives from the items.
        self.version = 0

    def register(self, key: str, item: T, *, replace: bool = False) -> T:
        with self._lock:
            if key in self._items and not replace:
                raise ValueError(f"{self.name}: {key!r} is already registered")
            self._items[key] = item
            self.version += 1
        return item

    def unregister(self, key: str) -> None:
        with self._lock:
            if self._items.pop(key, None) is not None:
                self.version += 1

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def keys(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        with self._lock:
            return list(self._items.items())

    def __iter__(self) -> Iterator[T]:
        with self._lock:
            items = list(self._items.values())
        return iter(items)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.version += 1


@dataclass(frozen=True, slots=True)
class CommittedUsageRecord:
    """One usage record as a usage consumer receives it: committed to Postgres, immutable.

    ``seq`` is the record's place in the usage log (commit order, with gaps); records
    reach a consumer in ascending ``seq``. ``request_id`` is the usage id: a consumer's
    effects are idempotent by it (e.g. a Stripe meter event's ``identifier``).
    Tokens are counts; ``latency_ms`` and ``ttft_ms`` are milliseconds; ``created_at``
    (when the request finished, the gateway's clock) and ``recorded_at`` (when the record
    was inserted, the database's clock) are aware UTC datetimes. ``status`` is the HTTP
    status the client got; ``endpoint`` is one of ``chat.completions``, ``completions``,
    ``embeddings``.
    """

    seq: int
    request_id: str
    organization_id: uuid.UUID
    api_key_id: uuid.UUID | None
    model: str
    endpoint: str
    status: int
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ttft_ms: float | None
    replica_id: uuid.UUID | None
    created_at: datetime
    recorded_at: datetime
    # Of prompt_tokens, those served from the prefix cache (OpenAI's cached_tokens).
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@runtime_checkable
class UsageConsumer(Protocol):
    """Reads committed usage records in order, from its own cursor (``potluck.usage.consumers``).

    - ``name``: stable and unique, ``[a-z0-9][a-z0-9._-]*`` (at most 100 characters). The
      cursor is kept under it; a new name starts a new cursor.
    - ``consume(records)``: one batch, in ascending ``seq``, never empty. Called inside a
      database transaction that also advances the cursor: writes made through Django's
      default connection commit together with the advance (exactly once); any exception
      rolls them back, and the same batch comes again after a back-off. Effects outside
      the database (Stripe, HTTP) may be repeated after a crash and must be idempotent
      by ``request_id``.

    Optional attributes, read with ``getattr``: ``batch_size`` (records per call,
    default 500, at most 10,000) and ``start`` (``"beginning"``, the default: every
    record ever committed; ``"end"``: only records committed after its cursor is made).
    """

    name: str

    def consume(self, records: Sequence[CommittedUsageRecord]) -> None: ...


CONSUMER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


class UsageConsumerRegistry(Registry[UsageConsumer]):
    """Usage consumers, each registered under its own ``name``."""

    def register(self, key: str, item: UsageConsumer, *, replace: bool = False
                 ) -> UsageConsumer:
        """Register ``item`` under ``key``, which must be ``item.name``.

        Raises ``ValueError`` for a name that is malformed or differs from ``key``, and
        ``TypeError`` for an object without ``name`` and ``consume``.
        """
        if not isinstance(item, UsageConsumer):
            raise TypeError(f"{self.name}: {item!r} has no name and consume(records)")
        if key != item.name:
            raise ValueError(f"{self.name}: registered as {key!r} but named {item.name!r}")
        if not CONSUMER_NAME.fullmatch(key):
            raise ValueError(f"{self.name}: {key!r} is not a valid consumer name "
                             "(lowercase letters, digits, '.', '_', '-'; at most 100)")
        return super().register(key, item, replace=replace)

    def add(self, consumer: UsageConsumer, *, replace: bool = False) -> UsageConsumer:
        """Register ``consumer`` under its own name (what an ``AppConfig.ready()`` calls)."""
        return self.register(consumer.name, consumer, replace=replace)


@dataclass(frozen=True)
class ConsolePanel:
    """A section of the console contributed by an extension."""

    key: str
    title: str
    api_path: str
    order: int = 100
    description: str = ""


@dataclass(frozen=True)
class Feature:
    """A licence-gated capability that an extension switched on."""

    key: str
    title: str
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class MemberPolicy(Protocol):
    """Asked before a member joins an organization; raises a ``PotluckError`` to refuse.

    E.g. the enterprise licence's seat limit. Warnings go through ``warnings``.
    """

    def before_add(self, organization: Any, email: str, role: str) -> None: ...


@runtime_checkable
class LoginPolicy(Protocol):
    """Asked before a password sign-in; raises ``potluck.errors.Forbidden`` to refuse.

    E.g. SSO enforced for a verified email domain: the message says where to sign in.
    """

    def check_password_login(self, email: str) -> None: ...


@dataclass(frozen=True)
class LoginProvider:
    """A way to sign in besides a password (an SSO button on the sign-in page)."""

    key: str
    title: str
    start_url: str  # where the browser goes to start the sign-in


# Stages of the inference core's policy pipeline: ``potluck.inference.policies.Policy``
# instances (typed Any here: this module sits below the inference core). Every request,
# online or a batch line, passes each of them; see that module for the hooks and order.
request_policies: Registry[Any] = Registry("request_policies")
# Called about once a second by every long-lived process that serves or runs requests
# (gateway workers, batch runs), on a thread where database access is allowed, so state
# such as the enterprise licence reaches a process that serves only /v1 within seconds.
# Each must be cheap when nothing changed, and must not raise (errors are logged).
refreshers: Registry[Callable[[], None]] = Registry("refreshers")
# Durable readers of committed usage (billing, credits); fed by potluck.usage.consumers.
usage_consumers = UsageConsumerRegistry("usage_consumers")
# Dotted paths of DRF authentication classes, tried after API keys and sessions.
auth_backends: Registry[str] = Registry("auth_backends")
console_panels: Registry[ConsolePanel] = Registry("console_panels")
features: Registry[Feature] = Registry("features")
# Extra URL patterns mounted under /api/ by an extension: a callable returning a list.
api_routes: Registry[Callable[[], list[Any]]] = Registry("api_routes")
# URL patterns mounted at the site's root by an extension (server-rendered pages outside
# the console, e.g. the vendor's licence store under /store/): a callable returning a list.
# They come before the console's "page not found"; /api, /v1, /static and /admin are
# not theirs to take.
site_routes: Registry[Callable[[], list[Any]]] = Registry("site_routes")
member_policies: Registry[MemberPolicy] = Registry("member_policies")
login_policies: Registry[LoginPolicy] = Registry("login_policies")
# Given the email being signed in (or None), the SSO providers that may sign it in.
login_providers: Registry[Callable[[str | None], list[LoginProvider]]] = Registry(
    "login_providers")
# click commands added to the `potluck` CLI (e.g. `potluck license`).
cli_commands: Registry[Any] = Registry("cli_commands")


@dataclass(frozen=True)
class ModelAlias:
    """A name the inference core serves like a model, routed to an existing model.

    ``target_id`` is the ``RegisteredModel`` id whose replicas serve it (a base model, or
    an adapter: then the replicas that hold the adapter); ``organization_id`` (a UUID
    string) makes it visible to that organization only, None to every organization.
    ``attributes`` reach policies as ``ctx.entry.attributes`` (e.g. the enterprise
    edition's compliance profile of a variant such as ``potluck-demo:finance``). An alias
    whose target is not served is left out; an organization's own model of the same
    name wins over a public alias, like any public model. Once its provider is
    unregistered, an alias is no longer served, even before the next refresh.
    """

    name: str
    target_id: str
    organization_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


# Called on the catalogue refresh (about once a second per gateway worker and batch run,
# on a thread where database access is allowed): each returns the aliases to serve.
# Must be cheap; one that raises is logged and its aliases are left out this round.
model_aliases: Registry[Callable[[], Sequence[ModelAlias]]] = Registry("model_aliases")


@dataclass(frozen=True)
class AdminEvent:
    """An administrative act, for extensions that keep a trail of them (an audit log).

    ``action`` is dotted, object first (``api_key.created``, ``member.role_changed``,
    ``licence.installed``); ``organization_id`` None means installation-wide; ``actor``
    says who, where the caller knows it (``user:<id>``, ``key:<prefix>``, ``operator``);
    ``target`` names the object (never a secret); ``details`` is JSON-serialisable and
    must never hold a secret or a key's raw value.
    """

    action: str
    organization_id: str | None = None
    actor: str = ""
    target: str = ""
    details: dict[str, Any] = field(default_factory=dict)


# Told of each administrative act, inside the transaction that makes it where there is
# one (so a trail commits with the change). A sink that raises fails the act.
admin_event_sinks: Registry[Callable[[AdminEvent], None]] = Registry("admin_event_sinks")

@dataclass(frozen=True)
class RevenueEvent:
    """Money the installation's operator earned, for extensions that share it (the
    enterprise edition's contribution credits put a share into the community pool).

    ``source`` names the kind (``licence_sale``, ...); ``reference`` is unique within it
    (an order or invoice id): sinks are idempotent by (source, reference), so a caller may
    announce an event again after a crash. ``amount_minor`` is in minor units of the ISO
    4217 ``currency`` (cents for USD).
    """

    source: str
    reference: str
    amount_minor: int
    currency: str
    organization_id: str | None = None
    occurred_at: datetime | None = None


# Told of each revenue event (e.g. a licence sale by a licence store), inside the
# caller's transaction where there is one. A sink that raises fails the caller's act.
revenue_sinks: Registry[Callable[[RevenueEvent], None]] = Registry("revenue_sinks")

ALL_REGISTRIES: tuple[Registry[Any], ...] = (
    request_policies,
    refreshers,
    usage_consumers,
    auth_backends,
    console_panels,
    features,
    api_routes,
    site_routes,
    member_policies,
    login_policies,
    login_providers,
    cli_commands,
    model_aliases,
    admin_event_sinks,
    revenue_sinks,
)


def feature_available(key: str) -> bool:
    """The one check for a licence-gated feature, like GitLab's ``feature_available?``."""
    return features.get(key) is not None


def run_refreshers() -> None:
    """Call every refresher; one that raises is logged and never stops the others."""
    for key, refresh in refreshers.items():
        try:
            refresh()
        except Exception:
            log.exception("refresher %r failed", key)


def record_admin_event(action: str, *, organization_id: Any = None, actor: str = "",
                       target: str = "", details: dict[str, Any] | None = None) -> None:
    """Tell every admin-event sink of an administrative act (nothing when none is
    registered). ``organization_id`` may be a UUID or its string. Raises whatever a sink
    raises, so that an act whose trail could not be written does not happen."""
    if not len(admin_event_sinks):
        return
    event = AdminEvent(action, str(organization_id) if organization_id else None, actor,
                       target, dict(details or {}))
    for sink in admin_event_sinks:
        sink(event)


def record_revenue(source: str, reference: str, amount_minor: int, currency: str, *,
                   organization_id: Any = None, occurred_at: datetime | None = None) -> None:
    """Announce revenue (e.g. a licence sale) to every revenue sink; nothing happens when
    none is registered. At least once is enough: sinks are idempotent by (source,
    reference). Raises ``ValueError`` for a negative amount or an empty reference."""
    if not reference or amount_minor < 0:
        raise ValueError("revenue needs a reference and an amount of at least 0")
    event = RevenueEvent(source, str(reference), int(amount_minor), currency.upper(),
                         str(organization_id) if organization_id else None, occurred_at)
    for sink in revenue_sinks:
        sink(event)


def model_aliases_now() -> list[tuple[str, ModelAlias]]:
    """(provider key, alias) of every registered provider's aliases; a provider that
    raises is logged and skipped."""
    found: list[tuple[str, ModelAlias]] = []
    for key, provide in model_aliases.items():
        try:
            found.extend((key, alias) for alias in provide())
        except Exception:
            log.exception("model alias provider %r failed", key)
    return found


def check_member_policies(organization: Any, email: str, role: str) -> None:
    for policy in member_policies:
        policy.before_add(organization, email, role)


def check_login_policies(email: str) -> None:
    for policy in login_policies:
        policy.check_password_login(email)


def providers_for(email: str | None) -> list[LoginProvider]:
    found: list[LoginProvider] = []
    for list_providers in login_providers:
        found.extend(list_providers(email))
    return found
