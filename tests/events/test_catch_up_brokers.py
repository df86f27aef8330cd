"""Catch-up after a plugin was switched off, on RabbitMQ and on Redis.

Events relayed while ``ear`` was left out of ``CRM2_PLUGINS`` never reached its
queue; the next process that starts with ``ear`` sends them (and only them:
what already waits in the queue is not sent again on every start), then a worker
applies them in log order. The memory:// case is tests/testing/test_switched_off_plugin.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from brokers import broker_url, cleanup, unique_prefix
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import EventData, publish
from crm2_core.events.dramatiq_broker import make_dramatiq_broker
from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import apply_or_dead_letter
from crm2_hookspecs import EventHandler, PluginManifest, hookimpl


class Chimed(EventData, type="chime.ring.chimed", version=1):
    n: int


class Chime:
    manifest = PluginManifest(name="chime", title="Chime (test only)")

    @hookimpl
    def crm2_event_types(self) -> Sequence[type]:
        return [Chimed]


class Ear:
    manifest = PluginManifest(name="ear", title="Ear (test only)")

    def __init__(self) -> None:
        self.heard: list[int] = []

    async def hear(self, session: AsyncSession, event: Envelope, context: Any) -> None:
        self.heard.append(int(event.data["n"]))

    @hookimpl
    def crm2_event_handlers(self) -> Sequence[EventHandler]:
        return [EventHandler("hear", ("chime.ring.chimed",), self.hear)]


SUBJECT = uuid.uuid4()


async def chime(app: Any, *numbers: int) -> None:
    async with app.context.session_factory() as session:
        for n in numbers:
            publish(session, Chimed(n=n), subject=SUBJECT)
        await session.commit()
    await app.settle_events()


def take_all(kind: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """Every message waiting in ear's queue, consumed and acked: ``(handler id, envelope)``."""
    broker = make_dramatiq_broker(broker_url(kind), prefix)
    queue = f"{prefix}.ear"
    broker.declare_queue(queue)
    consumer = broker.consume(queue, prefetch=50, timeout=500)
    taken: list[tuple[str, dict[str, Any]]] = []
    try:
        while True:
            message = next(consumer)
            if message is None:
                return taken
            taken.append((message.args[0], message.args[1]))
            consumer.ack(message)
    finally:
        consumer.close()
        broker.close()


@pytest.mark.parametrize("kind", ["amqp", "redis"])
async def test_a_plugin_switched_off_catches_up_when_switched_on(
    kind: str, crm2_app_factory: Any
) -> None:
    prefix = unique_prefix()
    chime_, ear = Chime(), Ear()
    broker = {"broker_url": broker_url(kind), "broker_queue_prefix": prefix}

    async def app_with(*plugins: str) -> Any:
        return await crm2_app_factory(plugins=list(plugins), extra_plugins=(chime_, ear), **broker)

    try:
        first = await app_with("chime", "ear")
        await chime(first, 1)  # relayed to ear's queue; no worker takes it yet
        await first.aclose()
        without_ear = await app_with("chime")
        await chime(without_ear, 2, 3)  # ear is off: nothing goes to its queue
        await without_ear.aclose()

        again = await app_with("chime", "ear")  # starting sends 2 and 3
        await again.aclose()
        once_more = await app_with("chime", "ear")  # nothing left to send
        queued = await asyncio.to_thread(take_all, kind, prefix)

        assert [(h, e["data"]["n"]) for h, e in queued] == [
            ("ear.hear", 1),
            ("ear.hear", 2),
            ("ear.hear", 3),
        ]
        handler = once_more.context.events.handlers.get("ear.hear")
        for _, envelope in queued:  # what a worker does with each message
            event = Envelope.model_validate(envelope)
            await apply_or_dead_letter(once_more.context, handler, event, 0)
        assert ear.heard == [1, 2, 3]
        await chime(once_more, 4)
        assert [e["data"]["n"] for _, e in await asyncio.to_thread(take_all, kind, prefix)] == [4]
    finally:
        cleanup(kind, prefix, plugins=("ear",))
