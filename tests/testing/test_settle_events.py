"""``settle_events()`` waits for the whole handler chain: events that handlers publish too."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import EventData, publish
from crm2_core.events import Envelope
from crm2_hookspecs import EventHandler, PluginManifest, hookimpl


class Started(EventData, type="chain.link.started", version=1):
    depth: int


class Passed(EventData, type="chain.link.passed", version=1):
    depth: int


class Chain:
    """Each ``started`` event makes a handler publish ``passed``; ``passed`` publishes the
    next ``started`` until ``depth`` reaches ``length``; the last handler records the end."""

    manifest = PluginManifest(name="chain", title="Handler chain (test only)")

    def __init__(self, length: int) -> None:
        self.length = length
        self.seen: list[str] = []

    async def on_started(self, session: AsyncSession, event: Envelope, context: Any) -> None:
        self.seen.append(f"started:{event.data['depth']}")
        publish(
            session, Passed(depth=event.data["depth"]), subject=event.subject, actor=event.actor
        )

    async def on_passed(self, session: AsyncSession, event: Envelope, context: Any) -> None:
        depth = int(event.data["depth"])
        self.seen.append(f"passed:{depth}")
        if depth + 1 < self.length:
            publish(session, Started(depth=depth + 1), subject=event.subject, actor=event.actor)

    @hookimpl
    def crm2_event_types(self) -> Sequence[type]:
        return [Started, Passed]

    @hookimpl
    def crm2_event_handlers(self) -> Sequence[EventHandler]:
        return [
            EventHandler("on_started", ("chain.link.started",), self.on_started),
            EventHandler("on_passed", ("chain.link.passed",), self.on_passed),
        ]


async def _kick(app: Any) -> None:
    async with app.context.session_factory() as session:
        publish(session, Started(depth=0), subject=uuid.uuid4())
        await session.commit()


async def test_settle_events_waits_for_events_published_by_handlers(crm2_app_factory: Any) -> None:
    chain = Chain(length=4)
    app = await crm2_app_factory(extra_plugins=(chain,))
    await _kick(app)
    await app.settle_events()
    assert chain.seen == [f"{kind}:{d}" for d in range(4) for kind in ("started", "passed")]


async def test_a_chain_that_never_ends_fails_within_the_timeout(crm2_app_factory: Any) -> None:
    chain = Chain(length=10**9)
    app = await crm2_app_factory(extra_plugins=(chain,))
    await _kick(app)
    with pytest.raises(AssertionError, match=r"did not settle within 1\.0s"):
        await app.settle_events(within=1.0)


class FailsOnce:
    """A handler whose first attempt fails: its retry is due long after the timeout."""

    manifest = PluginManifest(name="chain", title="A handler retried later (test only)")

    def __init__(self) -> None:
        self.attempts = 0

    async def on_started(self, session: AsyncSession, event: Envelope, context: Any) -> None:
        self.attempts += 1
        if self.attempts == 1:
            raise RuntimeError("the first attempt fails")

    @hookimpl
    def crm2_event_types(self) -> Sequence[type]:
        return [Started]

    @hookimpl
    def crm2_event_handlers(self) -> Sequence[EventHandler]:
        return [
            EventHandler(
                "on_started", ("chain.link.started",), self.on_started, min_backoff_seconds=30.0
            )
        ]


async def test_a_retry_due_after_the_timeout_is_an_assertion_not_a_timeout(
    crm2_app_factory: Any,
) -> None:
    handler = FailsOnce()
    app = await crm2_app_factory(extra_plugins=(handler,))
    await _kick(app)
    with pytest.raises(AssertionError, match=r"did not settle within 0\.5s"):
        await app.settle_events(within=0.5)
    assert handler.attempts == 1
