"""Pieces shared by the deals scenarios (2, 3, 3b, 8): SQL on the bench database,
the asyncpg baseline server, and large data sets seeded once per run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness import Crm2Env, Envs, Server, log, uvicorn_app

DEALS_PATH = "/api/v1/deals/deals"
# Env name -> deals seeded into it (a data set is seeded once and shared by 3 and 3b).
_SEEDED: dict[str, int] = {}


def sql(dsn: str, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement on ``dsn`` with asyncpg; the rows as dicts."""
    import asyncpg

    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def execute(dsn: str, statement: str) -> None:
    """One statement without parameters (simple protocol: VACUUM, TRUNCATE) on ``dsn``."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def seeded_env(envs: Envs, name: str, deals: int) -> Crm2Env:
    """The environment ``name`` with ``deals`` deals (one client per ten) loaded once.

    Loaded with ``crm2 deals seed-load`` (COPY), then ``VACUUM ANALYZE`` so the planner
    and the visibility map see the real table, as they would after autovacuum.
    """
    env = envs.get(name)
    with envs.lock(f"seed {name}"):
        if _SEEDED.get(name) != deals:
            if name in _SEEDED:
                raise RuntimeError(f"environment {name} already holds {_SEEDED[name]} deals")
            clients = max(1, deals // 10)
            log(f"seeding {name}: {clients:,} clients, {deals:,} deals")
            env.crm2("deals", "seed-load", "--clients", str(clients), "--deals", str(deals),
                     timeout=900)  # fmt: skip
            execute(env.asyncpg_dsn, "VACUUM ANALYZE deals_deal")
            _SEEDED[name] = deals
    return env


def asyncpg_baseline(env: Crm2Env, port: int | None = None, **extra_env: str) -> Server:
    """``raw_asyncpg_deals.py`` on ``env``'s database (one uvicorn worker)."""
    return uvicorn_app("raw_asyncpg_deals", env.workdir, port, BENCH_DSN=env.asyncpg_dsn,
                       **extra_env)  # fmt: skip
