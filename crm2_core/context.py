"""The running application as hooks, routes and the CLI see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm2_core.db.engine import (
    AppSession,
    app_session_class,
    create_engine,
    create_read_engine,
    create_read_session_factory,
    create_session_factory,
)
from crm2_core.errors import ConfigurationError
from crm2_core.plugins import PluginRegistry
from crm2_core.settings import Settings

if TYPE_CHECKING:  # redis is imported only when CRM2_REDIS_URL is set
    from redis.asyncio import Redis

    from crm2_core.auth.authenticator import Authenticator
    from crm2_core.auth.service import AuthService
    from crm2_core.events.bus import EventBus
    from crm2_core.observability.metrics import Metrics
    from crm2_core.observability.tracing import Tracing
    from crm2_core.scheduler import Scheduler
    from crm2_core.streams.service import Streams

T = TypeVar("T")

# Every read, connect and close of the shared Redis client ends within this many seconds
# (redis-py waits forever by default): a connection to a hung Redis must not leave a
# close pending for ever (redis-py shields it from cancellation) nor a read stuck. Above
# the guard's REDIS_TIMEOUT, which bounds each call first. Pub/sub's blocking reads are
# not cut by it (redis-py reads them without a deadline). The URL's own
# ``?socket_timeout=`` or ``?socket_connect_timeout=`` wins.
REDIS_SOCKET_TIMEOUT = 5.0


class ServiceKey(Generic[T]):
    """A typed name for a service kept on the context, when its class is not the key.

    The core's own services use these (the context cannot import the packages
    that build them); a plugin keys its services by their class.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


# The default plugins' services: provided by their crm2_configure, read through
# the typed properties below.
AUTH: ServiceKey[AuthService] = ServiceKey("auth")
AUTHENTICATOR: ServiceKey[Authenticator] = ServiceKey("authenticator")
EVENTS: ServiceKey[EventBus] = ServiceKey("events")
SCHEDULER: ServiceKey[Scheduler] = ServiceKey("scheduler")
STREAMS: ServiceKey[Streams] = ServiceKey("streams")
# Observability (crm2_core.observability), present only when enabled.
METRICS: ServiceKey[Metrics] = ServiceKey("metrics")
METRICS_SERVER: ServiceKey[Any] = ServiceKey("metrics_server")  # the worker's /metrics server
TRACING: ServiceKey[Tracing] = ServiceKey("tracing")
# Whether the server serving this application is stopping (crm2_core.http.server).
SERVER_STOPPING: ServiceKey[Callable[[], bool]] = ServiceKey("server_stopping")


def _label(key: type[Any] | ServiceKey[Any]) -> str:
    return key.name if isinstance(key, ServiceKey) else key.__qualname__


@dataclass
class AppContext:
    """Everything built from settings: plugins, database, Redis, and the plugins' services.

    Implements ``crm2_hookspecs.Crm2Context``. A plugin's ``crm2_configure`` keeps
    its long-lived services with ``context.provide(HelloService, service)`` and
    reads them back, typed, with ``context.get(HelloService)``.
    """

    settings: Settings
    plugins: PluginRegistry
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    # safe requests' sessions (no BEGIN/COMMIT on PostgreSQL); None: use session_factory
    read_session_factory: async_sessionmaker[AsyncSession] | None = None
    # ``http.deps.read_connection``'s engine (no BEGIN/COMMIT on PostgreSQL); None: use engine
    read_engine: AsyncEngine | None = None
    redis: Redis | None = None
    # this application's session class: session events listen here, not process-wide
    session_class: type[AppSession] = field(default_factory=app_session_class)
    _services: dict[object, object] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.session_class.application = self  # its sessions know their application

    def plugin_settings(self, name: str) -> Any:
        return self.plugins.settings_for(name)

    def is_enabled(self, name: str) -> bool:
        return self.plugins.is_enabled(name)

    def provide(self, key: type[T] | ServiceKey[T], service: T) -> None:
        """Keep ``service`` under ``key`` for the application's life; once per key."""
        if key in self._services:
            raise ConfigurationError(
                f"{_label(key)} is provided twice: two plugins build the same service"
            )
        if isinstance(key, type) and not isinstance(service, key):
            raise TypeError(f"{service!r} is not a {key.__qualname__}")
        self._services[key] = service

    def get(self, key: type[T] | ServiceKey[T]) -> T:
        """The service kept under ``key``; ``LookupError`` naming it when nobody provided it."""
        try:
            return cast(T, self._services[key])
        except KeyError:
            raise LookupError(
                f"no {_label(key)} in this application: the plugin that provides it is not "
                "enabled, or its crm2_configure has not run yet"
            ) from None

    def find(self, key: type[T] | ServiceKey[T]) -> T | None:
        """The service kept under ``key``, or ``None`` (for what works without it)."""
        return cast("T | None", self._services.get(key))

    def has(self, key: type[Any] | ServiceKey[Any]) -> bool:
        return key in self._services

    @property
    def auth(self) -> AuthService:
        return self.get(AUTH)

    @property
    def authenticator(self) -> Authenticator:
        return self.get(AUTHENTICATOR)

    @property
    def events(self) -> EventBus:
        return self.get(EVENTS)

    @property
    def scheduler(self) -> Scheduler:
        return self.get(SCHEDULER)

    @property
    def streams(self) -> Streams:
        return self.get(STREAMS)

    async def aclose(self) -> None:
        bus = self.find(EVENTS)
        if bus is not None:
            bus.detach()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def redis_client(url: str) -> Redis:
    """The application's Redis client: every socket operation bounded in time."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url, socket_timeout=REDIS_SOCKET_TIMEOUT, socket_connect_timeout=REDIS_SOCKET_TIMEOUT
    )


def build_context(settings: Settings, plugins: PluginRegistry) -> AppContext:
    engine = create_engine(settings)
    redis: Redis | None = None
    if settings.redis_url:
        redis = redis_client(settings.redis_url)
    session_class = app_session_class()
    return AppContext(
        settings=settings,
        plugins=plugins,
        engine=engine,
        session_factory=create_session_factory(engine, session_class),
        read_session_factory=create_read_session_factory(engine, settings, session_class),
        read_engine=create_read_engine(engine, settings),
        redis=redis,
        session_class=session_class,
    )
