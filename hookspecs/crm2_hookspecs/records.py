"""The small typed records that travel through crm2's hooks.

They depend on nothing but the standard library, so that a plugin can be
type-checked against the contract without installing crm2-core's stack.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

PLUGIN_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
PERMISSION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)+$")
BUILTIN_ROLES = ("admin", "manager", "agent", "viewer")
_T = TypeVar("_T")


@dataclass(frozen=True)
class PluginManifest:
    """What a plugin declares about itself; the module-level ``manifest`` of its entry point.

    :param name: the plugin's one name: entry point, route prefix ``/api/v1/<name>``,
        settings prefix ``CRM2_<NAME>_``, permission prefix ``<name>:``, table prefix.
    :param title: a human title for listings.
    :param requires_core: a PEP 440 specifier the running crm2-core version must satisfy.
    :param depends: names of the plugins this one needs; they start and migrate first.
    :param settings: a pydantic-settings ``BaseSettings`` subclass with
        ``env_prefix="CRM2_<NAME>_"``, validated before any hook runs.
    :param version: leave ``None`` to take the installed distribution's version.
    :param hookspecs: classes or modules holding ``@hookspec`` functions this plugin
        adds so that other plugins can extend it.
    """

    name: str
    title: str
    requires_core: str = ">=0.1,<1"
    depends: tuple[str, ...] = ()
    settings: type | None = None
    version: str | None = None
    hookspecs: tuple[object, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not PLUGIN_NAME_PATTERN.match(self.name):
            raise ValueError(f"plugin name {self.name!r} must match {PLUGIN_NAME_PATTERN.pattern}")
        if isinstance(self.depends, str):
            raise TypeError(f"{self.name}: depends must be a tuple of names, not a string")


@dataclass(frozen=True)
class Permission:
    """A permission string a plugin declares, with the built-in roles it proposes to grant it to.

    Default grants are applied once, the first time the permission is seen;
    afterwards administrators own the role's permission set.
    """

    name: str
    description: str
    default_roles: tuple[str, ...] = ("admin",)

    def __post_init__(self) -> None:
        if not PERMISSION_PATTERN.match(self.name):
            raise ValueError(f"permission {self.name!r} must look like 'plugin:action'")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, an API key, or whatever a ``crm2_authenticate`` backend returns.

    ``permissions`` is the effective set; ``"*"`` means every permission.
    """

    id: uuid.UUID
    kind: Literal["user", "api_key"] | str
    roles: frozenset[str]
    permissions: frozenset[str] = frozenset()
    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def has_permission(self, permission: str) -> bool:
        return "*" in self.permissions or permission in self.permissions


@dataclass(frozen=True)
class HealthCheck:
    """A readiness probe: ``check`` raises (or returns ``False``) when the dependency is down."""

    name: str
    check: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class ScheduledJob:
    """A periodic job a plugin asks the core to run every ``interval_seconds``.

    ``run`` receives the application context and must be safe to run twice.
    """

    name: str
    interval_seconds: int
    run: Callable[[Crm2Context], Awaitable[None]]


@dataclass(frozen=True)
class EventHandler:
    """What a plugin runs when events of ``event_types`` arrive (``crm2_event_handlers``).

    ``handle(session, event, context)`` is awaited inside a transaction of its
    own, in which the core also records that this handler applied this event:
    a redelivery changes nothing. It must not commit. Raising retries the event
    with exponential backoff up to ``max_retries``; then it goes to the
    dead-letter store (``crm2 events dead-letters``), and the later events of the
    same subject are held there behind it until it is replayed or skipped. Events
    of one subject arrive in log order; waiting for an earlier one is not a
    failure and spends no retry.

    ``handle_batch(session, events, context)`` (optional) applies several events,
    in log order, in one transaction, with the same effect as ``handle`` on each in
    turn; the core records every ``(handler, event)`` pair in that transaction. The
    in-process broker uses it for a run of events (a CSV import's thousands of
    ``*.created``), so a handler that usually finds nothing to do pays one query per
    batch instead of one per event. It must not commit; if it raises, the batch is
    rolled back and its events are applied one at a time with ``handle`` (their
    retries and dead letters as usual). RabbitMQ and Redis workers call ``handle``.

    ``skips(session, event, context)`` (optional) answers, before the handler's
    transaction, ``True`` when ``handle`` would change nothing for this event (a rules
    engine with no rule on its type). The core then records the event applied in one
    statement of its own, with the same order and duplicate checks, instead of a
    transaction around ``handle``: a worker's handler that takes every event type pays
    one round trip for each event it has nothing to do with, not a ``BEGIN``, its reads
    and a ``COMMIT``. It may read (``execute_in_session(…, reads_only=True)`` sends no
    ``BEGIN``, or a cache) and must not write; when in doubt it answers ``False``. If
    the event cannot be recorded at once (an earlier event of its subject is pending,
    its position is not committed yet), the usual path runs, ``handle`` included.
    On PostgreSQL the relay asks it too, for small batches, in the relaying process (on
    a session of its own, before the batch's positions commit) and records a ``True``
    there instead of sending or queueing the event for the handler (within 0.5 s for
    the batch: a later answer counts as ``False``): the answer must come from committed
    data, whichever process asks.

    :param name: unique within the plugin; the handler's id is ``<plugin>.<name>``.
    :param event_types: the event type names it wants (``"deals.deal.won"``).
    :param handle_batch: ``None``: events are applied one at a time.
    """

    name: str
    event_types: tuple[str, ...]
    handle: Callable[[Any, Any, Any], Awaitable[None]]
    max_retries: int = 5
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    time_limit_seconds: float = 60.0
    handle_batch: Callable[[Any, Sequence[Any], Any], Awaitable[None]] | None = None
    skips: Callable[[Any, Any, Any], Awaitable[bool]] | None = None


@dataclass(frozen=True)
class SseChannel:
    """A live stream served at ``/api/v1/streams/<name>`` (``crm2_sse_channels``).

    :param event_types: the event types it carries; a name ending in ``.*``
        matches by prefix (``"deals.*"``).
    :param permission: the permission a subscriber needs.
    :param can_see: ``await can_see(principal, event, context)`` decides per
        event whether this subscriber may receive it (record-level rules).
    """

    name: str
    event_types: tuple[str, ...]
    permission: str
    can_see: Callable[[Principal, Any, Any], Awaitable[bool]] | None = None

    def matches(self, event_type: str) -> bool:
        return any(
            event_type.startswith(pattern[:-1]) if pattern.endswith(".*") else event_type == pattern
            for pattern in self.event_types
        )


@runtime_checkable
class Crm2Context(Protocol):
    """The running application as hooks see it (implemented by ``crm2_core.context.AppContext``).

    ``settings`` is the core's settings object, ``session_factory`` an SQLAlchemy
    ``async_sessionmaker``, ``redis`` a ``redis.asyncio.Redis`` or ``None``.
    ``crm2_configure`` keeps a plugin's long-lived services with
    ``context.provide(HelloService, service)``; hooks and routes read them back,
    typed, with ``context.get(HelloService)``.
    """

    settings: Any
    session_factory: Any
    redis: Any

    def provide(self, key: type[_T], service: _T) -> None:
        """Keep ``service`` for the application's life under its class ``key`` (once per key)."""
        ...

    def get(self, key: type[_T]) -> _T:
        """The service kept under ``key``; ``LookupError`` when nobody provided it."""
        ...

    def plugin_settings(self, name: str) -> Any:
        """The validated settings object of the plugin called ``name``."""
        ...

    def is_enabled(self, name: str) -> bool:
        """Whether the plugin called ``name`` is enabled in this deployment."""
        ...


@dataclass(frozen=True)
class ConsoleView:
    """One section a plugin adds to the web console, rendered without rebuilding the console.

    ``list_path`` is a cursor-paginated list endpoint of the plugin (it answers
    ``{"items": [...], "next_cursor": ...}``); ``item_schema`` and
    ``create_schema`` name components of ``/openapi.json`` (``ClientPublic``,
    ``ClientCreate``), from which the console takes field types and limits.
    ``columns`` are item fields shown in the list, ``filters`` query parameters
    of the list endpoint offered as inputs, ``form`` the fields of the create
    form (empty: no create form). ``item_path`` (``/api/v1/x/things/{id}``)
    opens a record (``{id}`` is the item's ``id_field``); with ``update_schema``
    and ``edit`` its fields are edited with ``PATCH`` and ``If-Match``.
    ``screen`` names a screen the console has built in (``deals.board``); a
    console that does not know it renders the generic list. ``stream`` is the
    SSE channel whose events refresh the view. ``create_path`` is where the
    create form posts (default ``list_path``, for lists such as "my tasks" that
    are views of another collection). ``actions`` name bodiless ``POST``
    endpoints under ``item_path`` (``complete`` → ``…/{id}/complete``), offered
    as a button on every row. ``titles`` translates ``title``
    by locale (``{"ru": "…"}``). ``write_permission`` is what the create form,
    the edit form and the actions need (empty: ``permission`` alone): a user
    who may read the section but lacks it is sent the view without them, so
    the console offers no button the server would refuse with 403.
    """

    key: str
    title: str
    list_path: str
    permission: str
    item_schema: str = ""
    create_schema: str = ""
    columns: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    form: tuple[str, ...] = ()
    item_path: str = ""
    id_field: str = "id"
    create_path: str = ""
    actions: tuple[str, ...] = ()
    update_schema: str = ""
    edit: tuple[str, ...] = ()
    screen: str = ""
    stream: str = ""
    order: int = 100
    titles: Mapping[str, str] = field(default_factory=dict)
    write_permission: str = ""

    def __post_init__(self) -> None:
        if not CONSOLE_VIEW_KEY.match(self.key):
            raise ValueError(f"console view key {self.key!r} must look like 'plugin.view'")
        if not self.list_path.startswith("/api/v1/"):
            raise ValueError(f"console view {self.key!r}: list_path must start with /api/v1/")
        if self.item_path and (
            not self.item_path.startswith("/api/v1/") or "{id}" not in self.item_path
        ):
            raise ValueError(f"console view {self.key!r}: item_path needs /api/v1/… and {{id}}")
        if self.actions and not self.item_path:
            raise ValueError(f"console view {self.key!r}: actions need an item_path")
        if self.create_path and not self.create_path.startswith("/api/v1/"):
            raise ValueError(f"console view {self.key!r}: create_path must start with /api/v1/")
        for name in self.filters:
            if name in LIST_PAGING_PARAMS:
                # the console sends the page's own limit and cursor next to the filters (as
                # every list endpoint takes them): this filter's value would never reach it
                raise ValueError(
                    f"console view {self.key!r}: filter {name!r} is a paging parameter of "
                    "every list (limit, cursor), which the console sets itself; a list "
                    "endpoint's filter needs another name"
                )
        if not PERMISSION_PATTERN.match(self.permission):
            raise ValueError(f"console view {self.key!r}: permission {self.permission!r}")
        if self.write_permission and not PERMISSION_PATTERN.match(self.write_permission):
            raise ValueError(
                f"console view {self.key!r}: write_permission {self.write_permission!r}"
            )


LIST_PAGING_PARAMS = frozenset({"limit", "cursor"})
CONSOLE_VIEW_KEY = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.-]*$")


@dataclass(frozen=True)
class LoginConfirmation:
    """A sign-in that waits for its user to confirm it out of band (a bot, a push).

    :param challenge_id: names this sign-in to ``crm2_core.api.decide_login``; not a
        secret (the waiting client holds a separate one), safe to put in a button.
    :param user_id: whose password was right.
    :param email: their e-mail.
    :param address: the client's IP address, to show the user.
    :param expires_at: when the sign-in is refused unless confirmed (UTC).
    """

    challenge_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    address: str
    expires_at: datetime
