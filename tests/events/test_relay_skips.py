"""The relay records what is nothing to a handler (its ``skips``) instead of sending it.

The relay's side with a recording sink (the broker's ``deliver``), and one run over the
real RabbitMQ broker into a worker process: what the relay recorded never reaches a
queue, the rest is sent and handled as usual.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace

import probe_plugin
import pytest
from brokers import broker_url, cleanup, ready_messages, unique_prefix, worker_process
from helpers import effects, wait_for

from crm2_core.events import publish
from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import HandlerRegistry, Pairs, RegisteredHandler
from crm2_core.events.relay import relay_batch
from crm2_core.events.relay_skips import RelaySkips
from crm2_core.testing import Crm2TestApp, TestDatabase

Sent = list[tuple[str, uuid.UUID]]


class Broker:
    """Records the (handler, event) pairs ``deliver`` sends, each call's apart."""

    def __init__(self, handlers: HandlerRegistry, fail: bool = False) -> None:
        self.handlers, self.fail = handlers, fail
        self.calls: list[Sent] = []

    async def deliver(self, events: Sequence[Envelope], to: Pairs | None = None) -> None:
        await asyncio.sleep(0.01)  # the broker's round trip, while the relay asks skips
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.calls.append(
            [
                (h.id, e.id)
                for e in events
                for h in self.handlers.for_event(e.type)
                if to is None or to(h, e)
            ]
        )


def _registry(app: Crm2TestApp, skips) -> tuple[HandlerRegistry, RegisteredHandler]:  # type: ignore[no-untyped-def]
    """The probe's ``record`` handler and ``probe.idle``, which takes the same events with
    ``skips``."""
    (record,) = app.context.events.handlers.for_event("probe.item.created")
    spec = replace(record.spec, name="idle", skips=skips)
    idle = RegisteredHandler("probe.idle", "probe", spec)
    return HandlerRegistry([record, idle]), idle


def _always(asked: list[uuid.UUID]):  # type: ignore[no-untyped-def]
    """A ``skips`` that answers ``True``, noting each event it is asked about."""

    async def skips(_session, event, _context) -> bool:  # type: ignore[no-untyped-def]
        asked.append(event.id)
        return True

    return skips


async def _committed(app: Crm2TestApp, subjects: Sequence[str]) -> None:
    async with app.context.session_factory() as session:
        for n, subject in enumerate(subjects):
            publish(session, probe_plugin.ItemCreated(n=n), subject=subject)
        await session.commit()


async def _relay(
    app: Crm2TestApp, handlers: HandlerRegistry, broker: Broker, skips: RelaySkips | None = None
) -> int:
    relay_skips = skips or RelaySkips(app.context, handlers)

    async def settle(session, events) -> None:  # type: ignore[no-untyped-def]
        await relay_skips.deliver(session, events, broker.deliver)

    async def unused(_events: Sequence[Envelope]) -> None:
        raise AssertionError("settle sends")

    return await relay_batch(app.context.session_factory, unused, settle=settle)


async def _app(factory, database: TestDatabase, **settings) -> Crm2TestApp:  # type: ignore[no-untyped-def]
    app = await factory(extra_plugins=(probe_plugin,), **settings)
    await app.relay_by_hand()  # this test relays and delivers itself
    return app


async def test_pairs_a_handler_skips_are_recorded_by_the_relay_and_not_sent(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """The relay asks ``skips`` for a small batch: the skipped pairs are recorded applied
    in its transaction and sent nowhere; the other handlers' pairs are sent first. On
    SQLite nothing changes: every pair is sent, and the worker asks ``skips``."""
    app = await _app(crm2_app_factory, crm2_database)
    asked: list[uuid.UUID] = []
    handlers, idle = _registry(app, _always(asked))
    broker = Broker(handlers)
    await _committed(app, ["a", "b"])
    assert await _relay(app, handlers, broker) == 2
    relayed = [e.id for e in await _log(app)]
    if crm2_database.backend != "postgresql":
        assert broker.calls == [[(h, e) for e in relayed for h in ("probe.record", "probe.idle")]]
        assert asked == [] and not await app.applied(idle.id, relayed[0])
        return
    assert broker.calls == [[("probe.record", e) for e in relayed]]  # nothing left to send
    assert asked == relayed
    for event_id in relayed:
        assert await app.applied(idle.id, event_id)
        assert not await app.applied("probe.record", event_id)


async def _any_applied(app: Crm2TestApp) -> bool:
    from sqlalchemy import func, select

    from crm2_core.events.models import AppliedEvent

    async with app.context.session_factory() as session:
        return bool(
            (await session.execute(select(func.count()).select_from(AppliedEvent))).scalar()
        )


async def _log(app: Crm2TestApp) -> list[Envelope]:
    from crm2_core.events.relay import read_log

    async with app.context.session_factory() as session:
        return await read_log(session, 0)


async def test_what_the_relay_recorded_rolls_back_with_its_batch(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """The broker fails: the batch's positions and the skipped pairs' records roll back
    together, and the next relay asks again."""
    if crm2_database.backend != "postgresql":
        pytest.skip("the relay asks skips on PostgreSQL only")
    app = await _app(crm2_app_factory, crm2_database)
    asked: list[uuid.UUID] = []
    handlers, idle = _registry(app, _always(asked))
    await _committed(app, ["a"])
    with pytest.raises(ConnectionError):
        await _relay(app, handlers, Broker(handlers, fail=True))
    assert await _log(app) == [] and len(asked) == 1
    assert not await _any_applied(app)
    broker = Broker(handlers)
    assert await _relay(app, handlers, broker) == 1
    (event,) = await _log(app)
    assert asked == [event.id, event.id] and await app.applied(idle.id, event.id)
    assert broker.calls == [[("probe.record", event.id)]]


async def test_a_skipped_pair_behind_a_pending_earlier_event_is_sent(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """The relay's claim has a delivery's order check: behind an earlier event of the
    subject still pending for the handler it writes nothing, and the pair is sent after
    the others, to be handled (and skipped) by the worker in order."""
    if crm2_database.backend != "postgresql":
        pytest.skip("the relay asks skips on PostgreSQL only")
    app = await _app(crm2_app_factory, crm2_database)

    async def skips(_session, event, _context) -> bool:  # type: ignore[no-untyped-def]
        return bool(event.data["n"] > 0)  # the subject's first event is not skipped

    handlers, idle = _registry(app, skips)
    broker = Broker(handlers)
    await _committed(app, ["s", "s", "t"])
    assert await _relay(app, handlers, broker) == 3
    first, second, other = (e.id for e in await _log(app))
    assert broker.calls == [
        [("probe.record", first), ("probe.record", second), ("probe.record", other)],
        [("probe.idle", first), ("probe.idle", second)],
    ]
    assert await app.applied(idle.id, other) and not await app.applied(idle.id, second)


async def test_with_the_setting_at_zero_the_relay_sends_every_pair(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    app = await _app(crm2_app_factory, crm2_database, relay_skips_batch_size=0)
    asked: list[uuid.UUID] = []
    handlers, idle = _registry(app, _always(asked))
    broker = Broker(handlers)
    await _committed(app, ["a"])
    assert await _relay(app, handlers, broker) == 1
    (event,) = await _log(app)
    assert asked == [] and broker.calls == [[("probe.record", event.id), (idle.id, event.id)]]


async def test_a_larger_batch_or_a_failing_skips_is_sent_to_the_worker(
    crm2_app_factory, crm2_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to ``relay_skips_batch_size`` events the relay asks; one more (the relay is
    behind): sent whole, skips not asked. A skips that raises, or answers after the
    batch's budget, counts as no."""
    if crm2_database.backend != "postgresql":
        pytest.skip("the relay asks skips on PostgreSQL only")
    from crm2_core.events import relay_skips

    app = await _app(crm2_app_factory, crm2_database)
    asked: list[int] = []
    slow = [False]

    async def skips(_session, event, _context) -> bool:  # type: ignore[no-untyped-def]
        asked.append(event.data["n"])
        if slow[0] and event.data["n"] == 0:
            raise RuntimeError("skips failed")
        if slow[0]:
            await asyncio.sleep(5)
        return True

    handlers, idle = _registry(app, skips)
    broker = Broker(handlers)
    most = app.context.settings.relay_skips_batch_size
    await _committed(app, [f"s{n}" for n in range(most)])
    assert await _relay(app, handlers, broker) == most
    assert asked == list(range(most))
    assert broker.calls == [[("probe.record", e.id) for e in await _log(app)]]

    asked.clear()
    broker.calls.clear()
    await _committed(app, [f"t{n}" for n in range(most + 1)])
    assert await _relay(app, handlers, broker) == most + 1
    assert asked == [] and len(broker.calls) == 1 and len(broker.calls[0]) == 2 * (most + 1)

    monkeypatch.setattr(relay_skips, "SKIPS_BUDGET_SECONDS", 0.05)
    slow[0] = True
    broker.calls.clear()
    await _committed(app, ["x", "y"])
    assert await _relay(app, handlers, broker) == 2
    assert asked == [0, 1]
    x, y = (e.id for e in (await _log(app))[-2:])
    assert broker.calls == [
        [("probe.record", x), ("probe.record", y)],
        [("probe.idle", x), ("probe.idle", y)],
    ]
    assert not await app.applied(idle.id, x) and not await app.applied(idle.id, y)


async def test_a_failing_claim_rolls_the_batch_back_and_the_relay_then_sends_every_pair(
    crm2_app_factory, crm2_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim that fails (a real database error in the relay's transaction) rolls the
    batch back; the relay's next tries send every pair instead of asking, so a fault
    in the claims never stops the log."""
    if crm2_database.backend != "postgresql":
        pytest.skip("the relay asks skips on PostgreSQL only")
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from crm2_core.events import relay_skips

    app = await _app(crm2_app_factory, crm2_database)

    async def skips(_session, _event, _context) -> bool:  # type: ignore[no-untyped-def]
        return True

    async def failing_claim(session, _handler, _event) -> bool:  # type: ignore[no-untyped-def]
        await session.execute(text("SELECT 1 / 0"))
        return True

    handlers, idle = _registry(app, skips)
    monkeypatch.setattr(relay_skips, "claim", failing_claim)
    skipping = RelaySkips(app.context, handlers)
    broker = Broker(handlers)
    await _committed(app, ["a"])
    with pytest.raises(DBAPIError):
        await _relay(app, handlers, broker, skipping)
    assert await _log(app) == [] and not await _any_applied(app)
    assert await _relay(app, handlers, broker, skipping) == 1
    (event,) = await _log(app)
    assert broker.calls[-1] == [("probe.record", event.id), (idle.id, event.id)]
    assert not await app.applied(idle.id, event.id)  # its worker asks


async def test_over_rabbitmq_a_skipped_pair_never_reaches_the_queue(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """The app's own relay, the real broker and a worker process: the probe's ``watch``
    handler acts on n >= 500 only. On PostgreSQL the relay records the others for it,
    so the queue holds one message per event plus one for the watched event, and the
    worker applies everything; on SQLite every pair is sent and the worker skips."""
    prefix = unique_prefix()
    probe_plugin.WATCH[0] = True
    try:
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url("amqp"), broker_queue_prefix=prefix
        )
        headers = await app.login("agent")
        ids = []
        for n in (1, 2, probe_plugin.WATCHED):
            response = await app.client.post("/api/v1/probe/items", json={"n": n}, headers=headers)
            assert response.status_code == 201, response.text
            ids.append(uuid.UUID(response.json()["event_id"]))

        async def relayed() -> bool:
            return len(await _log(app)) == 3

        await wait_for(relayed)
        queued = await asyncio.to_thread(ready_messages, f"{prefix}.probe")
        if crm2_database.backend == "postgresql":
            assert queued == 4
            assert await app.applied("probe.watch", ids[0]) and await app.applied(
                "probe.watch", ids[1]
            )
        else:
            assert queued == 6
        async with worker_process(crm2_database.url, "amqp", prefix, watch=True):

            async def handled() -> bool:
                return await effects(app) == 4

            await wait_for(handled, within=30)
        for event_id in ids:
            assert await app.applied("probe.record", event_id)
            assert await app.applied("probe.watch", event_id)
        assert await effects(app, ids[2]) == 2  # recorded and watched
    finally:
        probe_plugin.WATCH[0] = False
        cleanup("amqp", prefix)


async def test_in_process_a_skipped_pair_is_recorded_by_the_relay_not_queued(
    crm2_app_factory, crm2_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """memory://: the relay records the pairs its small batch's handlers skip, and the
    broker queues only the rest once the batch commits; the end state is the usual one."""
    from crm2_core.events.memory_broker import MemoryBroker

    queued: Sent = []
    deliver = MemoryBroker.deliver

    async def recording(broker: MemoryBroker, events, to=None) -> None:  # type: ignore[no-untyped-def]
        queued.extend(
            (h.id, e.id)
            for e in events
            for h in broker.handlers.for_event(e.type)
            if to is None or to(h, e)
        )
        await deliver(broker, events, to)

    monkeypatch.setattr(MemoryBroker, "deliver", recording)
    probe_plugin.WATCH[0] = True
    try:
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,), plugin_settings={"metrics": {"enabled": True}}
        )
    finally:
        probe_plugin.WATCH[0] = False
    headers = await app.login("agent")
    ids = []
    for n in (1, probe_plugin.WATCHED):
        response = await app.client.post("/api/v1/probe/items", json={"n": n}, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(uuid.UUID(response.json()["event_id"]))
        await app.settle_events()
    skipped, watched = ids
    expected = [("probe.record", skipped), ("probe.record", watched), ("probe.watch", watched)]
    if crm2_database.backend != "postgresql":
        expected.insert(1, ("probe.watch", skipped))
    assert sorted(queued) == sorted(expected)
    for event_id in ids:
        assert await app.applied("probe.watch", event_id)
    assert await effects(app, skipped) == 1 and await effects(app, watched) == 2
    # counted once, after the relay's commit (PostgreSQL) or by the delivery (SQLite)
    metrics = await app.client.get("/metrics")
    assert 'crm2_handler_runs_total{handler="probe.watch",outcome="skipped"} 1.0' in metrics.text
