"""Baseline for scenario 1: ``GET /api/v1/auth/me`` as an integrator would write it by hand.

Bare Starlette + an asyncpg pool on crm2's own database, with the same JWT check crm2
makes (PyJWT, the pinned algorithm, issuer, audience, required claims, leeway, ``typ``,
a user-id subject), then the query crm2 sends for the user and their roles (captured
from SQLAlchemy, see ``ME``), answered with orjson in crm2's field order. The effective
permissions come from ``BENCH_ME_PERMISSIONS`` (crm2 takes them from its role cache,
not from a query per request). No credentials-version check, no visibility, no
problem+json: that is what crm2's extra cost buys.

Configuration from the environment: ``BENCH_DSN`` (the crm2 database),
``BENCH_JWT_SECRET`` (crm2's ``CRM2_AUTH_JWT_SECRET``), ``BENCH_ME_PERMISSIONS``
(a JSON list). Served by the harness with one uvicorn worker::

    python -m uvicorn --app-dir bench/baselines raw_asyncpg_me:app --host 127.0.0.1
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ME = (
    "SELECT auth_user.id, auth_user.email, auth_user.full_name, auth_user.is_active, "
    "auth_user.created_at, auth_user.updated_at, auth_user.version, auth_user_role.role_name \n"
    "FROM auth_user LEFT OUTER JOIN auth_user_role ON auth_user_role.user_id = auth_user.id \n"
    "WHERE auth_user.id = $1::UUID ORDER BY auth_user_role.role_name"
)
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "typ", "jti"]

DSN = os.environ["BENCH_DSN"]
SECRET = os.environ["BENCH_JWT_SECRET"]
PERMISSIONS = orjson.loads(os.environ.get("BENCH_ME_PERMISSIONS", "[]"))
POOL: dict[str, asyncpg.Pool] = {}
UNAUTHORIZED = Response(b'{"detail":"unauthorized"}', 401, media_type="application/json")


async def me(request: Request) -> Response:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return UNAUTHORIZED
    try:
        claims = jwt.decode(
            token.strip(), SECRET, algorithms=["HS256"], audience="crm2-api", issuer="crm2",
            leeway=10, options={"require": REQUIRED_CLAIMS},
        )  # fmt: skip
        user_id = uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError):
        return UNAUTHORIZED
    if claims.get("typ") != "access":
        return UNAUTHORIZED
    async with POOL["pool"].acquire() as conn:
        rows = await conn.fetch(ME, user_id)
    if not rows or not rows[0]["is_active"]:
        return Response(b'{"detail":"not found"}', 404, media_type="application/json")
    first = rows[0]
    body = {
        "id": first["id"],
        "email": first["email"],
        "full_name": first["full_name"],
        "is_active": first["is_active"],
        "roles": [r["role_name"] for r in rows if r["role_name"] is not None],
        "created_at": first["created_at"],
        "updated_at": first["updated_at"],
        "version": first["version"],
        "permissions": PERMISSIONS,
    }
    # asyncpg's UUID is its own class, which orjson hands to ``default``
    return Response(
        orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z), media_type="application/json"
    )


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    # crm2's engine keeps database_pool_size (10) connections plus as many overflow
    POOL["pool"] = await asyncpg.create_pool(DSN, min_size=10, max_size=20)
    try:
        yield
    finally:
        await POOL.pop("pool").close()


app = Starlette(
    routes=[Route("/api/v1/auth/me", me), Route("/healthz", healthz)],
    lifespan=lifespan,
)
