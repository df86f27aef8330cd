"""The auth default plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from crm2_core.auth.authenticator import Authenticator, RoleCache
from crm2_core.auth.config import AuthSettings
from crm2_core.auth.credentials import ApiKeyCache, CredentialsCache
from crm2_core.auth.delays import LoginDelays
from crm2_core.auth.events import (
    EVENT_TYPES,
    ApiKeysRevoked,
    RoleChanged,
    UserCredentialsChanged,
)
from crm2_core.auth.models import MODELS
from crm2_core.auth.passwords import Passwords
from crm2_core.auth.service import AuthService
from crm2_core.auth.throttle import LoginThrottle, MemoryThrottle, RedisThrottle
from crm2_core.auth.tokens import TokenService
from crm2_core.context import AUTH, AUTHENTICATOR, STREAMS, AppContext
from crm2_core.db import utcnow
from crm2_core.db.turns import take_turns
from crm2_core.events.envelope import Envelope
from crm2_core.migration_paths import environment_dir
from crm2_hookspecs import (
    ConsoleView,
    Crm2Context,
    Permission,
    PluginManifest,
    Principal,
    ScheduledJob,
    hookimpl,
)

SYNC_LOCK = 0x63726D34

manifest = PluginManifest(
    name="auth",
    title="Authentication and authorization",
    depends=("core",),
    settings=AuthSettings,
    description="Users, roles, permissions, JWT access and refresh tokens, API keys.",
)


@hookimpl
def crm2_models() -> Sequence[type]:
    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return environment_dir() / "versions" / "auth"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission("auth:users", "Create, change and delete users"),
        Permission("auth:roles", "Create, change and delete roles"),
        Permission("auth:api_keys", "Create and revoke API keys"),
    ]


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    """The admin section of the web console: users and roles (shown to those who manage them)."""
    return [
        ConsoleView(
            key="auth.users",
            title="Users",
            titles={"ru": "Пользователи"},
            list_path="/api/v1/auth/users",
            item_path="/api/v1/auth/users/{id}",
            permission="auth:users",
            item_schema="UserPublic",
            create_schema="UserCreate",
            update_schema="UserUpdate",
            edit=("full_name", "roles", "is_active"),
            columns=("email", "full_name", "roles", "is_active", "created_at"),
            form=("email", "full_name", "password", "roles"),
            order=900,
        ),
        ConsoleView(
            key="auth.roles",
            title="Roles",
            titles={"ru": "Роли"},
            list_path="/api/v1/auth/roles",
            item_path="/api/v1/auth/roles/{id}",
            id_field="name",
            permission="auth:roles",
            item_schema="RolePublic",
            create_schema="RoleCreate",
            update_schema="RoleUpdate",
            edit=("description", "permissions"),
            columns=("name", "description", "permissions", "builtin"),
            form=("name", "description", "permissions"),
            order=910,
        ),
    ]


@hookimpl
def crm2_configure(context: AppContext) -> None:
    settings: AuthSettings = context.plugin_settings("auth")
    tokens = TokenService(settings, context.settings.env)
    throttle: LoginThrottle = (
        RedisThrottle(context.redis, context.settings.redis_prefix)
        if context.redis is not None
        else MemoryThrottle()
    )
    roles = RoleCache(context.session_factory, settings.role_cache_seconds)
    credentials = CredentialsCache(
        context.read_session_factory or context.session_factory,
        settings.credentials_cache_seconds,
    )
    api_keys = ApiKeyCache(
        context.read_session_factory or context.session_factory,
        settings.credentials_cache_seconds,
    )
    delays = LoginDelays(context.session_factory, settings)
    context.provide(
        AUTH,
        AuthService(
            settings,
            tokens,
            Passwords(settings),
            throttle,
            roles,
            credentials,
            delays,
            context,
            api_keys,
        ),
    )
    enabled = frozenset(p.name for _, p in context.plugins.collect("crm2_permissions"))
    context.provide(
        AUTHENTICATOR, Authenticator(context, tokens, roles, credentials, api_keys, enabled)
    )


def forget_on_events(
    roles: RoleCache,
    credentials: CredentialsCache,
    api_keys: ApiKeyCache,
    recheck: Callable[[Callable[[Principal], bool]], int] | None = None,
) -> Callable[[Sequence[Envelope]], None]:
    """Drop cached credentials, keys and roles when a process changed them, and have
    the open streams of whoever they belong to check their rights again (``recheck``:
    the streams hub's)."""

    def tap(events: Sequence[Envelope]) -> None:
        ids: set[uuid.UUID] = set()
        changed_roles: set[str] = set()
        everyone = False
        for event in events:
            if event.type == UserCredentialsChanged.event_type:
                try:
                    user_id = uuid.UUID(str(event.data.get("user_id")))
                except ValueError:
                    credentials.clear()
                    everyone = True
                else:
                    credentials.invalidate(user_id)
                    ids.add(user_id)
            elif event.type == ApiKeysRevoked.event_type:
                try:
                    key_ids = [uuid.UUID(str(k)) for k in event.data.get("key_ids", [])]
                except (TypeError, ValueError):
                    api_keys.clear()
                    everyone = True
                else:
                    api_keys.invalidate(key_ids)
                    ids.update(key_ids)
            elif event.type == RoleChanged.event_type:
                roles.invalidate()
                changed_roles.add(str(event.data.get("name")))
        if recheck is not None and (ids or changed_roles or everyone):
            recheck(lambda p: everyone or p.id in ids or not changed_roles.isdisjoint(p.roles))

    return tap


@hookimpl
def crm2_event_types() -> Sequence[type]:
    return EVENT_TYPES


@hookimpl
def crm2_scheduled_jobs() -> Sequence[ScheduledJob]:
    return [ScheduledJob(name="forget_login_failures", interval_seconds=3600, run=_forget)]


async def _forget(context: Crm2Context) -> None:
    """Drop streaks of failed logins older than the window: they no longer delay anyone."""
    assert isinstance(context, AppContext)
    service = context.auth
    window = timedelta(seconds=service.settings.login_window_seconds)
    await service.delays.sweep(utcnow() - window)


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_core.auth.routes import router

    return [router]


@hookimpl
def crm2_startup(context: AppContext) -> Awaitable[None]:
    context.auth.tokens.warn_if_ephemeral()
    # The streams plugin (configured after auth, which it depends on) feeds its hub
    # every relayed event this process hears of: watch for credential and role changes.
    streams = context.find(STREAMS)
    if streams is not None:
        authenticator = context.authenticator
        streams.hub.taps.append(
            forget_on_events(
                authenticator.roles,
                authenticator.credentials,
                authenticator.api_keys,
                streams.hub.recheck,
            )
        )

        def forget_everything() -> None:
            authenticator.credentials.clear()
            authenticator.api_keys.clear()
            authenticator.roles.invalidate()

        streams.hub.lost.append(forget_everything)
    return sync_permissions(context)


@hookimpl
def crm2_resolve_entity(
    kind: str, id: str, principal: Principal | None, context: AppContext, session: Any
) -> Awaitable[Mapping[str, Any] | None] | None:
    """``auth.user``: the user other plugins link to (``crm2_core.kit.links``)."""
    if kind != "auth.user":
        return None
    from crm2_core.auth.entities import resolve_user

    return resolve_user(context, id, principal, session)


async def sync_permissions(context: AppContext) -> None:
    """Record every enabled plugin's permissions and the built-in roles."""
    declared: list[tuple[str, Any]] = context.plugins.collect("crm2_permissions")
    service: AuthService = context.auth
    async with context.session_factory() as session:
        await take_turns(session, SYNC_LOCK)  # processes starting together
        await service.sync_permissions(session, declared)
        await session.commit()
