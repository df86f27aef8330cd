"""benchprobe: the crm2 plugin of benchmark scenarios 4 and 4b (event latency).

``POST /api/v1/benchprobe/pings`` publishes one ``benchprobe.ping.sent`` event in
the request's transaction; the ``benchprobe.record`` handler applies it (in the
worker, through the real broker). Two timestamps per event are pushed to Redis
lists, each taken by an ``after_commit`` listener on the transaction concerned:

- ``<BENCHPROBE_KEY>:committed``: right after the request's COMMIT (``crm2 serve``);
- ``<BENCHPROBE_KEY>:handled``: right after the handler's COMMIT (``crm2 worker``),
  i.e. when the event's effect and its applied-record are durable.

Entries are ``"<event id> <time.time()>"``; both processes run on the same machine,
so their wall clocks agree. The Redis push runs as a task after the stamp is taken,
so it is not part of what is measured. The plugin has no tables, hence no migration.

It is loaded as an installed plugin (``crm2.plugins`` entry point) through a
throw-away ``.dist-info`` in the run's temporary directory: see
``bench/scenarios/s4_events.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from crm2_core.auth import CurrentPrincipal
from crm2_core.events import Envelope, EventData, publish
from crm2_core.http.deps import SessionDep
from crm2_hookspecs import EventHandler, PluginManifest, hookimpl

manifest = PluginManifest(name="benchprobe", title="Benchmark probe (bench/ only)")

_clients: dict[int, Redis] = {}  # one client per event loop (serve: 1; worker: dramatiq's)
_pushes: set[asyncio.Task[Any]] = set()


class PingSent(EventData, type="benchprobe.ping.sent", version=1):
    """One benchmark event; ``n`` is its number in the run."""

    n: int


class PingIn(BaseModel):
    n: int


router = APIRouter(prefix="/api/v1/benchprobe")


def _redis() -> Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(id(loop))
    if client is None:
        client = _clients[id(loop)] = Redis.from_url(os.environ["BENCHPROBE_REDIS_URL"])
    return client


def _stamp_after_commit(session: AsyncSession, kind: str, event_id: uuid.UUID) -> None:
    """Push ``"<event_id> <now>"`` to ``<BENCHPROBE_KEY>:<kind>`` once ``session`` commits."""
    key = f"{os.environ['BENCHPROBE_KEY']}:{kind}"

    def stamp(_session: Session) -> None:
        at = time.time()
        task = asyncio.get_running_loop().create_task(_redis().rpush(key, f"{event_id} {at!r}"))
        _pushes.add(task)
        task.add_done_callback(_pushes.discard)

    sa_event.listen(session.sync_session, "after_commit", stamp, once=True)


@router.post("/pings", status_code=201)
async def send_ping(
    body: PingIn, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, str]:
    """Publish one event about a fresh subject (so no per-subject ordering wait)."""
    row = publish(session, PingSent(n=body.n), subject=uuid.uuid4(), actor=principal)
    _stamp_after_commit(session, "committed", row.id)
    return {"event_id": str(row.id)}


async def record(session: AsyncSession, event: Envelope, context: Any) -> None:
    """The handler: does nothing but stamp the moment its transaction commits."""
    _stamp_after_commit(session, "handled", event.id)


@hookimpl
def crm2_event_types() -> Sequence[type]:
    return [PingSent]


@hookimpl
def crm2_event_handlers() -> Sequence[EventHandler]:
    return [EventHandler(name="record", event_types=("benchprobe.ping.sent",), handle=record)]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    return [router]
