"""``/healthz`` (alive) and ``/readyz`` (database, Redis and every plugin's probes)."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import text

from crm2_core.context import AppContext
from crm2_core.http.deps import ContextDep
from crm2_core.http.routing import APIRouter
from crm2_hookspecs import HealthCheck

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 3.0


def builtin_checks(context: AppContext) -> list[HealthCheck]:
    async def database() -> None:
        async with context.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    checks = [HealthCheck("database", database)]
    if context.redis is not None:
        redis = context.redis

        async def ping_redis() -> None:
            await redis.ping()

        checks.append(HealthCheck("redis", ping_redis))
    return checks


async def _run(check: HealthCheck) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result: object = check.check()
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, CHECK_TIMEOUT_SECONDS)
        ok = result is not False
        error = None if ok else "check returned False"
    except Exception as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
    report: dict[str, Any] = {
        "name": check.name,
        "ok": ok,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if error:
        report["error"] = error
    return report


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(context: ContextDep) -> JSONResponse:
    """Readiness: 200 when every dependency answers, else 503 naming the failing ones."""
    # The core's own probes (database, Redis) come through the same hook, from the core plugin.
    checks = [
        check for _plugin, check in context.plugins.collect("crm2_health_checks", context=context)
    ]
    reports = await asyncio.gather(*(_run(c) for c in checks))
    ready = all(r["ok"] for r in reports)
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": reports},
        status_code=200 if ready else 503,
    )
