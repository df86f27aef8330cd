"""Baseline for scenario 10: "my open tasks, 50 per page" with bare Starlette + asyncpg.

``GET /api/v1/tasks/views/mine?limit=50`` for the agent ``BENCH_USER_ID``: the
SQL crm2's ``views/mine`` sends for an agent (the visibility rule "assigned to or
created by me" and the view's "assigned to me, open", ordered by the due-date key
and the id), each row shaped like crm2's ``TaskPublic`` (``link``, ``overdue``)
and serialized with orjson. No authentication, no permission check, no
pagination cursor encoding: that is what crm2's extra cost buys.

Configuration from the environment: ``BENCH_DSN`` (the crm2 database) and
``BENCH_USER_ID`` (the agent whose list is read).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

COLUMNS = (
    "id, title, description, status, priority, assignee_id, creator_id, due_at, tags, "
    "checklist, reminders, link_kind, link_id, series_id, occurrence_at, automation_rule_id, "
    "completed_at, created_at, updated_at, version, is_open"
)
MINE = (
    f"SELECT {COLUMNS} FROM tasks_task "
    "WHERE (assignee_id = $1 OR creator_id = $1) AND assignee_id = $1 AND is_open = true "
    "ORDER BY due_key ASC, id ASC LIMIT $2"
)
DSN = os.environ["BENCH_DSN"]
USER_ID = uuid.UUID(os.environ.get("BENCH_USER_ID", str(uuid.UUID(int=0))))
POOL: dict[str, asyncpg.Pool] = {}


def _public(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    item = dict(row)
    for key in ("tags", "checklist", "reminders"):  # json columns arrive as text
        if isinstance(item[key], str):
            item[key] = orjson.loads(item[key])
    kind, link_id = item.pop("link_kind"), item.pop("link_id")
    item["link"] = {"kind": kind, "id": link_id} if kind else None
    due = item["due_at"]
    item["overdue"] = bool(item.pop("is_open") and due is not None and due < now)
    return item


async def mine(request: Request) -> Response:
    limit = min(int(request.query_params.get("limit", "50")), 200)
    async with POOL["pool"].acquire() as conn:
        rows = await conn.fetch(MINE, USER_ID, limit + 1)
    now = datetime.now(UTC)
    more = len(rows) > limit
    items = [_public(r, now) for r in rows[:limit]]
    body = {"items": items, "next_cursor": str(items[-1]["id"]) if more else None}
    return Response(orjson.dumps(body, default=str), media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    POOL["pool"] = await asyncpg.create_pool(DSN, min_size=10, max_size=20)
    try:
        yield
    finally:
        await POOL.pop("pool").close()


app = Starlette(
    routes=[Route("/api/v1/tasks/views/mine", mine), Route("/healthz", healthz)],
    lifespan=lifespan,
)
