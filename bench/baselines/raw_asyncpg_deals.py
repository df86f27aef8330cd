"""Baseline for scenarios 2 and 3: bare Starlette + an asyncpg pool on crm2's own tables.

* ``POST /api/v1/deals/deals`` (scenario 2): one ``INSERT … RETURNING`` of the row crm2
  would write for the same JSON body (title, client_id, value, currency; pipeline,
  stage and owner fixed at start-up, as crm2 resolves them to the default pipeline's
  first open stage and the caller), answered as orjson. No validation beyond parsing,
  no outbox row, no stage history: that is what crm2's extra cost buys.
* ``GET /api/v1/deals/deals?status=…&limit=…&cursor=…`` (scenarios 3, 3b): the SQL
  crm2's ``list_deals`` sends for ``sort=-updated_at`` with a status filter (captured
  from SQLAlchemy's engine log, see ``LIST_FIRST`` / ``LIST_AFTER``), rows serialized
  with orjson; the cursor has crm2's format, so one cursor works against both servers.

Configuration from the environment: ``BENCH_DSN`` (the crm2 database), and
``BENCH_PIPELINE_ID`` / ``BENCH_STAGE_ID`` / ``BENCH_OWNER_ID`` for the insert.
Served by the harness with one uvicorn worker::

    python -m uvicorn --app-dir bench/baselines raw_asyncpg_deals:app --host 127.0.0.1
"""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

COLUMNS = (
    "id, title, client_id, pipeline_id, stage_id, status, value_minor, currency, owner_id, "
    "source, expected_close_date, lost_reason_id, lost_reason, closed_at, stage_entered_at, "
    "created_at, updated_at, version"
)
SELECT = ", ".join(f"deals_deal.{c.strip()}" for c in COLUMNS.split(","))

# What crm2 sends (SQLAlchemy engine log, PostgreSQL 15, asyncpg) for
# GET /api/v1/deals/deals?status=open&limit=50 and the same with a cursor. The cursor
# condition is a row-value comparison since crm2_core.http.pagination._after uses one
# (it was `updated_at < $2 OR updated_at = $3 AND id < $4`, linear in the page depth).
LIST_FIRST = (
    f"SELECT {SELECT} \nFROM deals_deal \nWHERE deals_deal.status = $1::VARCHAR "
    "ORDER BY deals_deal.updated_at DESC, deals_deal.id DESC \n LIMIT $2::INTEGER"
)
LIST_AFTER = (
    f"SELECT {SELECT} \nFROM deals_deal \nWHERE deals_deal.status = $1::VARCHAR AND "
    "(deals_deal.updated_at, deals_deal.id) < ($2::TIMESTAMP WITH TIME ZONE, $3::UUID) "
    "ORDER BY deals_deal.updated_at DESC, deals_deal.id DESC \n LIMIT $4::INTEGER"
)
INSERT = (
    f"INSERT INTO deals_deal ({COLUMNS}) VALUES "
    "($1, $2, $3, $4, $5, 'open', $6, $7, $8, '', NULL, NULL, NULL, NULL, $9, $9, $9, 1) "
    f"RETURNING {COLUMNS}"
)

DSN = os.environ["BENCH_DSN"]
PIPELINE_ID = uuid.UUID(os.environ.get("BENCH_PIPELINE_ID", str(uuid.UUID(int=0))))
STAGE_ID = uuid.UUID(os.environ.get("BENCH_STAGE_ID", str(uuid.UUID(int=0))))
OWNER_ID = uuid.UUID(os.environ.get("BENCH_OWNER_ID", str(uuid.UUID(int=0))))
POOL: dict[str, asyncpg.Pool] = {}


def _json(data: Any, status: int = 200) -> Response:
    # asyncpg's UUID is its own class, which orjson hands to ``default``
    body = orjson.dumps(data, default=str)
    return Response(body, status_code=status, media_type="application/json")


def encode_cursor(updated_at: datetime, deal_id: uuid.UUID) -> str:
    """crm2's cursor format: base64url(JSON list of tagged values), unpadded."""
    raw = orjson.dumps([{"t": updated_at.isoformat()}, {"u": str(deal_id)}])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Both of crm2's cursor formats: the values alone, or ``[scope tag, values]``.

    The tag (a fingerprint of the list and sort order) is crm2's check; the baseline
    reads the values only.
    """
    outer = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if len(outer) == 2 and isinstance(outer[0], str):
        outer = outer[1]
    moment, ident = outer
    return datetime.fromisoformat(moment["t"]), uuid.UUID(ident["u"])


async def list_deals(request: Request) -> Response:
    status = request.query_params.get("status", "open")
    limit = min(int(request.query_params.get("limit", "50")), 200)
    cursor = request.query_params.get("cursor")
    async with POOL["pool"].acquire() as conn:
        if cursor:
            moment, ident = decode_cursor(cursor)
            rows = await conn.fetch(LIST_AFTER, status, moment, ident, limit + 1)
        else:
            rows = await conn.fetch(LIST_FIRST, status, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["updated_at"], rows[-1]["id"])
    return _json({"items": [dict(r) for r in rows], "next_cursor": next_cursor})


async def create_deal(request: Request) -> Response:
    body = orjson.loads(await request.body())
    value_minor = int(Decimal(body.get("value") or "0") * 100)
    now = datetime.now(UTC)
    async with POOL["pool"].acquire() as conn:
        row = await conn.fetchrow(
            INSERT, uuid.uuid4(), body["title"], uuid.UUID(body["client_id"]), PIPELINE_ID,
            STAGE_ID, value_minor, body.get("currency") or "EUR", OWNER_ID, now,
        )  # fmt: skip
    return _json(dict(row), status=201)


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
    routes=[
        Route("/api/v1/deals/deals", list_deals, methods=["GET"]),
        Route("/api/v1/deals/deals", create_deal, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
