"""Who is calling: bearer JWT, API key, then any ``crm2_authenticate`` backend."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from crm2_core.auth.credentials import ApiKeyCache, CredentialsCache, KeyRecord
from crm2_core.auth.models import ApiKey, PermissionRecord, RolePermission
from crm2_core.auth.tokens import TokenService
from crm2_core.db import utcnow
from crm2_core.errors import Unauthorized
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext


API_KEY_PREFIX = "crm2_"
_NO_PRINCIPAL = object()


def hash_secret(value: str) -> str:
    """SHA-256 for high-entropy secrets (API keys, refresh tokens); passwords use argon2id."""
    return hashlib.sha256(value.encode()).hexdigest()


class RoleCache:
    """role → permissions and the known permission names, reloaded every ``ttl`` seconds
    (roles change rarely, requests often)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], ttl: float) -> None:
        self._session_factory = session_factory
        self._ttl = ttl
        self._permissions: dict[str, frozenset[str]] = {}
        self._known: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()
        self._epoch = 0  # moves on with every invalidation

    def invalidate(self) -> None:
        self._epoch += 1
        self._loaded_at = float("-inf")

    async def _load(self) -> None:
        async with self._lock:
            if time.monotonic() - self._loaded_at < self._ttl:
                return
            epoch = self._epoch
            loaded_at = time.monotonic()
            async with self._session_factory() as session:
                rows = (await session.execute(select(RolePermission))).scalars().all()
                known = (await session.execute(select(col(PermissionRecord.name)))).scalars().all()
            grouped: dict[str, set[str]] = {}
            for row in rows:
                grouped.setdefault(row.role_name, set()).add(row.permission)
            self._permissions = {role: frozenset(perms) for role, perms in grouped.items()}
            self._known = frozenset(known)
            # An invalidation that arrived during the read may be newer than what was
            # read: answer with it this once, and read again on the next call.
            if epoch == self._epoch:
                self._loaded_at = loaded_at

    async def permissions(self, roles: Iterable[str]) -> frozenset[str]:
        if time.monotonic() - self._loaded_at >= self._ttl:
            await self._load()
        result: set[str] = set()
        for role in roles:
            result |= self._permissions.get(role, frozenset())
        return frozenset(result)

    def known(self) -> frozenset[str]:
        """Every declared permission name, as of the last load.

        Never loads: callers hold a request's connection, and waiting for a second one
        from a pool their peers have exhausted would deadlock. Authenticating the
        request has just refreshed the cache anyway.
        """
        return self._known


PRINCIPAL_SCOPE_KEY = "crm2.principal"
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def _refuse_repeated_credentials(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """401 for a credential header sent twice: which one counts is a guess (this server
    took the last, a proxy in front may check the first), so neither does."""
    names = [name.lower() for name, _ in headers]
    for wanted in CREDENTIAL_HEADERS:
        if names.count(wanted) > 1:
            shown = wanted.decode().title()
            raise Unauthorized(f"{shown} was sent {names.count(wanted)} times; send it once")


class Authenticator:
    def __init__(
        self,
        context: AppContext,
        tokens: TokenService,
        roles: RoleCache,
        credentials: CredentialsCache,
        api_keys: ApiKeyCache,
        enabled_permissions: frozenset[str] = frozenset(),
    ) -> None:
        self.context = context
        self.tokens = tokens
        self.roles = roles
        self.credentials = credentials
        self.api_keys = api_keys
        # What the enabled plugins declare: a disabled plugin's grants stay in the
        # database but are never shown (``/auth/me``).
        self.enabled_permissions = enabled_permissions

    async def from_scope(self, scope: Mapping[str, Any]) -> Principal | None:
        """Authenticate an ASGI request once; later calls in the same request reuse the answer."""
        # Cached in the request's own scope, not in scope["state"]: that dict is
        # the lifespan state, which asgi-lifespan (the test kit) shares between
        # requests instead of copying it per request as uvicorn does.
        cached = scope.get(PRINCIPAL_SCOPE_KEY)
        if cached is not None:
            return None if cached is _NO_PRINCIPAL else cached
        raw = scope.get("headers", [])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
        if len(headers) != len(raw):
            _refuse_repeated_credentials(raw)
        principal = await self.from_headers(headers)
        if isinstance(scope, dict):
            scope[PRINCIPAL_SCOPE_KEY] = _NO_PRINCIPAL if principal is None else principal
        return principal

    async def from_headers(self, headers: Mapping[str, str]) -> Principal | None:
        authorization = headers.get("authorization")
        if authorization and headers.get("x-api-key"):
            # Which one counts is a guess, as for a header sent twice: a proxy in front
            # may check the other one, so neither does.
            raise Unauthorized("Authorization and X-API-Key were both sent; send one credential")
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() == "bearer" and not credential:
                raise Unauthorized("Authorization: Bearer carries no token")
            if scheme.lower() == "bearer":
                if credential.startswith(API_KEY_PREFIX):
                    return await self.from_api_key(credential)
                return await self.from_access_token(credential)
        api_key = headers.get("x-api-key")
        if api_key:
            return await self.from_api_key(api_key.strip())
        result = self.context.plugins.pm.hook.crm2_authenticate(
            headers=headers, context=self.context
        )
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            if authorization:
                raise Unauthorized("unsupported Authorization scheme; use Bearer")
            return None
        return await self.with_permissions(result)

    async def with_permissions(self, principal: Principal) -> Principal:
        granted = await self.roles.permissions(principal.roles)
        return Principal(
            id=principal.id,
            kind=principal.kind,
            roles=principal.roles,
            permissions=principal.permissions | granted,
            name=principal.name,
            attributes=principal.attributes,
        )

    async def from_access_token(self, token: str) -> Principal:
        claims = self.tokens.decode_access(token)
        await self.check_credentials(claims.subject, claims.credentials_version)
        return Principal(
            id=claims.subject,
            kind="user",
            roles=claims.roles,
            permissions=await self.roles.permissions(claims.roles),
            name=str(claims.raw.get("email", "")),
            # ``expires_at`` (epoch seconds): a stream opened with this token ends then
            attributes={
                "credentials_version": claims.credentials_version,
                "expires_at": float(claims.raw["exp"]),
            },
        )

    async def check_credentials(self, user_id: uuid.UUID, version: int) -> None:
        """401 unless the user exists, is active and the token's version is the current one."""
        current = await self.credentials.get(user_id)
        if current is None or not current.active or current.version != version:
            raise Unauthorized(
                "this token's account was changed, disabled or deleted; sign in again"
            )

    async def from_api_key(self, key: str) -> Principal:
        parts = key.split("_")
        if len(parts) != 3 or parts[0] + "_" != API_KEY_PREFIX:
            raise Unauthorized("malformed API key")
        now = utcnow()
        row = await self.api_keys.get(parts[1])
        if row is None or not hmac.compare_digest(row.key_hash, hash_secret(key)):
            raise Unauthorized("unknown API key")
        check_key_standing(row, now)
        if row.last_used_at is None or row.last_used_at < now - timedelta(minutes=1):
            async with self.context.session_factory() as session:
                await session.execute(
                    update(ApiKey).where(col(ApiKey.id) == row.id).values(last_used_at=now)
                )
                await session.commit()
            self.api_keys.touched(row.id, now)
        roles = frozenset({row.role_name})
        return Principal(
            id=row.id,
            kind="api_key",
            roles=roles,
            permissions=await self.roles.permissions(roles),
            name=row.name,
            attributes={"created_by": row.created_by, **row.expiry()},
        )

    async def standing_key(self, key_id: uuid.UUID) -> KeyRecord:
        """The key's row while it stands; 401 once it is revoked, expired or deleted."""
        row = await self.api_keys.by_id(key_id)
        if row is None:
            raise Unauthorized("unknown API key")
        check_key_standing(row, utcnow())
        return row

    async def recheck(self, principal: Principal) -> Principal:
        """``principal`` as it stands now (an open stream's check): 401 when its
        credentials were revoked, else the same principal with its roles' current
        permissions. A ``crm2_authenticate`` backend's principal is its backend's
        business and stays as it was."""
        if principal.kind == "user" and "credentials_version" in principal.attributes:
            await self.check_credentials(principal.id, principal.attributes["credentials_version"])
        elif principal.kind == "api_key":
            await self.standing_key(principal.id)
        else:
            return principal
        return Principal(
            id=principal.id,
            kind=principal.kind,
            roles=principal.roles,
            permissions=await self.roles.permissions(principal.roles),
            name=principal.name,
            attributes=principal.attributes,
        )


def check_key_standing(row: KeyRecord, now: datetime) -> None:
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthorized("this API key is revoked or expired")
