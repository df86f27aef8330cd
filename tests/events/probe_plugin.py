"""A throw-away plugin for event-bus tests: emits ``probe.item.created``, counts its effects."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from crm2_core.auth import CurrentPrincipal
from crm2_core.errors import Unprocessable
from crm2_core.events import Envelope, EventData, publish
from crm2_core.http.deps import SessionDep
from crm2_hookspecs import EventHandler, Permission, PluginManifest, Principal, SseChannel, hookimpl

manifest = PluginManifest(name="probe", title="Event bus probe")

# Handler behaviour knobs, set by tests: fail the first N attempts per event.
FAILURES: dict[str, int] = {}
ATTEMPTS: Counter[str] = Counter()
# Events with n >= 1000 make the handler sleep this long (worker-kill tests).
SLOW_SECONDS: list[float] = [0.0]
# The record handler's max_retries, read when the plugin's handlers are collected.
MAX_RETRIES: list[int] = [2]
# (subject, n) in the order the record handler ran them in this process (ordering tests).
APPLIED: list[tuple[str, int]] = []
# Read when the handlers are collected: a second handler, ``watch``, that acts on items
# with n >= WATCHED only and says so with ``skips`` (the relay's skip tests).
WATCH: list[bool] = [False]
WATCHED = 500
# Stream tests: role -> seconds the channel's can_see takes for that role (a slow consumer).
SEE_DELAY: dict[str, float] = {}


class ProbeEffect(SQLModel, table=True):
    __tablename__ = "probe_effect"
    __table_args__ = {"info": {"plugin": "probe"}}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    event_id: uuid.UUID = Field(index=True)
    subject: str = Field(max_length=128)
    n: int


class ItemCreated(EventData, type="probe.item.created", version=1):
    n: int


class ItemIn(BaseModel):
    n: int
    subject: str | None = None


router = APIRouter(prefix="/api/v1/probe")


@router.post("/items", status_code=201)
async def create_item(
    body: ItemIn, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """Publish one event; a negative n fails after publishing (the event must roll back)."""
    subject = body.subject or str(uuid.uuid4())
    row = publish(session, ItemCreated(n=body.n), subject=subject, actor=principal)
    if body.n < 0:
        raise Unprocessable("negative n")
    return {"event_id": str(row.id), "subject": subject}


async def record_effect(session: AsyncSession, event: Envelope, context: Any) -> None:
    key = str(event.id)
    ATTEMPTS[key] += 1
    if ATTEMPTS[key] <= FAILURES.get(key, FAILURES.get("*", 0)):
        raise RuntimeError(f"probe failure {ATTEMPTS[key]} for {key}")
    if event.data["n"] >= 1000 and SLOW_SECONDS[0]:
        await asyncio.sleep(SLOW_SECONDS[0])
    session.add(ProbeEffect(event_id=event.id, subject=event.subject, n=event.data["n"]))
    APPLIED.append((event.subject, event.data["n"]))


async def watch_effect(session: AsyncSession, event: Envelope, context: Any) -> None:
    session.add(ProbeEffect(event_id=event.id, subject="watch", n=event.data["n"]))


async def watch_skips(session: AsyncSession, event: Envelope, context: Any) -> bool:
    return bool(event.data["n"] < WATCHED)


@hookimpl
def crm2_models() -> Sequence[type]:
    return [ProbeEffect]


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "probe_migrations" / "versions"


@hookimpl
def crm2_event_types() -> Sequence[type]:
    return [ItemCreated]


@hookimpl
def crm2_event_handlers() -> Sequence[EventHandler]:
    return [
        EventHandler(
            name="record",
            event_types=("probe.item.created",),
            handle=record_effect,
            max_retries=MAX_RETRIES[0],
            min_backoff_seconds=0.05,
            max_backoff_seconds=0.2,
        ),
        *(
            [EventHandler("watch", ("probe.item.created",), watch_effect, skips=watch_skips)]
            if WATCH[0]
            else []
        ),
    ]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    return [router]


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission(
            "probe:read", "Receive the probe stream", ("admin", "manager", "agent", "viewer")
        ),
        Permission("probe:audit", "Receive the probe audit stream"),
    ]


async def can_see(principal: Principal, event: Envelope, context: Any) -> bool:
    """Agents never see events with an odd ``n`` (a record-level rule to test filtering)."""
    delay = max((SEE_DELAY.get(role, 0.0) for role in principal.roles), default=0.0)
    if delay:
        await asyncio.sleep(delay)
    return not ("agent" in principal.roles and event.data.get("n", 0) % 2 == 1)


@hookimpl
def crm2_sse_channels() -> Sequence[SseChannel]:
    return [
        SseChannel("probe", ("probe.item.created",), "probe:read", can_see),
        SseChannel("probe_audit", ("probe.*",), "probe:audit"),
    ]
