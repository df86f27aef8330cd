"""The auth default plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from crm2_core.auth.authenticator import Authenticator, RoleCache
from crm2_core.auth.config import AuthSettings
from crm2_core.auth.models import MODELS
from crm2_core.auth.passwords import Passwords
from crm2_core.auth.service import AuthService
from crm2_core.auth.throttle import LoginThrottle, MemoryThrottle, RedisThrottle
from crm2_core.auth.tokens import TokenService
from crm2_core.context import AUTH, AUTHENTICATOR, AppContext
from crm2_core.migration_paths import environment_dir
from crm2_hookspecs import Permission, PluginManifest, Principal, hookimpl

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
def crm2_configure(context: AppContext) -> None:
    settings: AuthSettings = context.plugin_settings("auth")
    tokens = TokenService(settings, context.settings.env)
    throttle: LoginThrottle = (
        RedisThrottle(context.redis, context.settings.redis_prefix)
        if context.redis is not None
        else MemoryThrottle()
    )
    roles = RoleCache(context.session_factory, settings.role_cache_seconds)
    context.provide(AUTH, AuthService(settings, tokens, Passwords(settings), throttle, roles))
    context.provide(AUTHENTICATOR, Authenticator(context, tokens, roles))


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_core.auth.routes import router

    return [router]


@hookimpl
def crm2_startup(context: AppContext) -> Awaitable[None]:
    return sync_permissions(context)


@hookimpl
def crm2_resolve_entity(
    kind: str, id: str, principal: Principal | None, context: AppContext
) -> Awaitable[Mapping[str, Any] | None] | None:
    """``auth.user``: the user other plugins link to (``crm2_core.kit.links``)."""
    if kind != "auth.user":
        return None
    from crm2_core.auth.entities import resolve_user

    return resolve_user(context, id, principal)


async def sync_permissions(context: AppContext) -> None:
    """Record every enabled plugin's permissions and the built-in roles."""
    declared: list[tuple[str, Any]] = context.plugins.collect("crm2_permissions")
    service: AuthService = context.auth
    async with context.session_factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Processes starting together take turns; SQLite's BEGIN IMMEDIATE already does.
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SYNC_LOCK})
        await service.sync_permissions(session, declared)
        await session.commit()
