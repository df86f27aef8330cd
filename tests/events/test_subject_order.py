"""Per-subject order under load: waiting for an earlier event is not failing, and an
earlier dead letter holds the later events of its subject.

A burst of events on one record, the first of them slow, must all be applied in log
order by a handler with no retries to spare: the later ones wait (``waits.Waiting``)
without spending ``max_retries`` and without becoming dead letters. When the first is
dead-lettered, the later ones are not applied past it: they are dead-lettered too
(``HeldBehindDeadLetter``), and a replay (or a skip of the first) applies them in order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import probe_plugin
import pytest
from brokers import broker_url, cleanup, unique_prefix, worker_process
from helpers import dead_letters, effects, run_dead_letters_cli, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from crm2_core.events import SYSTEM, Envelope, publish
from crm2_core.events.handlers import apply_or_dead_letter
from crm2_core.events.models import AppliedEvent, DeadLetter, EventRecord
from crm2_core.events.relay import relay_batch
from crm2_core.events.waits import (
    LONG_WAIT_EVERY,
    MAX_WAIT_SECONDS,
    Waiting,
    note_wait,
    wait_seconds,
)
from crm2_core.testing import Crm2TestApp, TestDatabase
from crm2_hookspecs import EventHandler

HANDLER = "probe.record"
# the first is slow (n >= 1000): the others arrive while it runs
BURST = [1000, *range(1, 12)]
METRICS_ON = {"metrics": {"enabled": True}}


async def _publish(
    app: Crm2TestApp, subject: str, ns: list[int], failing: int | None = None
) -> list[uuid.UUID]:
    """The events in one transaction: the relay hands them over as one batch. The
    ``failing``-th fails every attempt."""
    async with app.context.session_factory() as session:
        rows = [
            publish(session, probe_plugin.ItemCreated(n=n), subject=subject, actor=SYSTEM)
            for n in ns
        ]
        if failing is not None:
            probe_plugin.FAILURES[str(rows[failing].id)] = 99
        await session.commit()
    return [row.id for row in rows]


async def _letters(app: Crm2TestApp) -> dict[uuid.UUID, DeadLetter]:
    """The waiting dead letters by event."""
    return {
        letter.event_id: letter
        for letter in await dead_letters(app)
        if letter.retried_at is None and letter.skipped_at is None
    }


async def _held_burst(app: Crm2TestApp) -> list[uuid.UUID]:
    """Three events on ``held``; the first is dead-lettered, the two others held behind it."""
    ids = await _publish(app, "held", [0, 1, 2], failing=0)
    await app.settle_events(within=30)
    letters = await _letters(app)
    assert set(letters) == set(ids)
    assert letters[ids[0]].error.startswith("RuntimeError: probe failure")
    for later in ids[1:]:
        error = letters[later].error
        assert error.startswith("HeldBehindDeadLetter: ") and str(ids[0]) in error
        assert letters[later].attempts == 0
    assert probe_plugin.APPLIED == []
    return ids


async def _applied_in_order(app: Crm2TestApp, subject: str) -> list[int]:
    """The subject's events' ``n`` in the order the handler claimed them."""
    async with app.context.session_factory() as session:
        stmt = (
            select(EventRecord.data)
            .join(AppliedEvent, AppliedEvent.event_id == EventRecord.id)  # type: ignore[arg-type]
            .where(AppliedEvent.handler == HANDLER, AppliedEvent.subject == subject)
            .order_by(AppliedEvent.applied_at)  # type: ignore[arg-type]
        )
        return [data["n"] for data in (await session.execute(stmt)).scalars()]


def _runs(text: str, outcome: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "crm2_handler_runs_total" and sample.labels == {
                "handler": HANDLER,
                "outcome": outcome,
            }:
                return float(sample.value)
    return None


@pytest.mark.parametrize("max_retries", [0, 1])
async def test_a_burst_on_one_subject_is_applied_in_order_without_dead_letters(
    crm2_app_factory: Any, max_retries: int, caplog: pytest.LogCaptureFixture
) -> None:
    probe_plugin.MAX_RETRIES[0] = max_retries
    probe_plugin.SLOW_SECONDS[0] = 0.4
    app: Crm2TestApp = await crm2_app_factory(extra_plugins=(probe_plugin,))
    caplog.set_level(logging.DEBUG, logger="crm2_core.events")
    await _publish(app, "burst", BURST)
    await app.settle_events(within=30)

    assert await dead_letters(app) == []
    assert [("burst", n) for n in BURST] == probe_plugin.APPLIED
    assert await effects(app) == len(BURST)
    # in-process, each later event is parked behind the running one before its claim:
    # none of them asked the database in vain (a worker's waits: the tests below)
    waited = [r for r in caplog.records if r.getMessage().startswith(f"handler {HANDLER} waiting")]
    assert waited == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_waiting_event_is_woken_when_its_predecessor_settles(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process broker does not leave a burst to its fallback poll (made a minute
    long here): each settled event queues the next one of its subject at once."""
    from crm2_core.events import memory_broker

    monkeypatch.setattr(memory_broker, "MAX_WAIT_SECONDS", 60.0)
    probe_plugin.MAX_RETRIES[0] = 0
    probe_plugin.SLOW_SECONDS[0] = 0.3
    app: Crm2TestApp = await crm2_app_factory(extra_plugins=(probe_plugin,))
    await _publish(app, "burst", BURST)
    await app.settle_events(within=20)
    assert [("burst", n) for n in BURST] == probe_plugin.APPLIED


async def test_waits_are_counted_apart_from_failures_in_the_metrics(crm2_app_factory: Any) -> None:
    """The later event handed over before the earlier one is applied waits (not fails),
    then is applied once the earlier one is."""
    probe_plugin.MAX_RETRIES[0] = 0
    app: Crm2TestApp = await crm2_app_factory(
        extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON
    )
    await app.context.events.close()  # no relay, no broker: the test hands events over
    await _publish(app, "pair", [1, 2])
    sent: list[Envelope] = []

    async def keep(events: Any) -> None:
        sent.extend(events)

    assert await relay_batch(app.context.session_factory, keep) == 2
    earlier, later = sent
    handler = app.context.events.handlers.get(HANDLER)
    assert handler is not None
    with pytest.raises(Waiting):
        await apply_or_dead_letter(app.context, handler, later, 0)
    assert await apply_or_dead_letter(app.context, handler, earlier, 0) == "applied"
    assert await apply_or_dead_letter(app.context, handler, later, 0) == "applied"

    response = await app.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert _runs(response.text, "applied") == 2
    assert _runs(response.text, "waiting") == 1
    assert _runs(response.text, "failed") is None
    assert _runs(response.text, "dead_lettered") is None


@pytest.mark.parametrize("kind", ["amqp", "redis"])
async def test_a_burst_on_one_subject_in_a_worker_waits_without_spending_retries(
    kind: str, crm2_app_factory: Any, crm2_database: TestDatabase
) -> None:
    prefix = unique_prefix()
    try:
        app: Crm2TestApp = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url(kind), broker_queue_prefix=prefix
        )
        async with worker_process(crm2_database.url, kind, prefix, slow_seconds=0.5, max_retries=0):
            await _publish(app, "burst", BURST)

            async def all_handled() -> bool:
                return await effects(app) == len(BURST) or bool(await dead_letters(app))

            await wait_for(all_handled, within=60)
        assert await dead_letters(app) == []
        assert await _applied_in_order(app, "burst") == BURST
    finally:
        cleanup(kind, prefix)


@pytest.mark.parametrize("kind", ["amqp", "redis"])
async def test_a_workers_threads_apply_a_burst_in_order_without_sending_it_back(
    kind: str, crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dramatiq's worker threads run their handlers' coroutines on one loop, so a burst
    on one record runs side by side: each later event waits in its subject's lane for
    the earlier one this process runs, instead of failing its claim and going back to
    the broker with a backoff (the old path: every event after the slow first one).
    Two threads, as the worker's test process has: one may wait (``run_worker``)."""
    prefix = unique_prefix()
    try:
        app: Crm2TestApp = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url(kind), broker_queue_prefix=prefix
        )
        broker = app.context.events.broker
        await app.context.events.close()  # nothing relays or consumes: the test hands over
        async with app.context.session_factory() as session:
            for n in BURST:
                publish(session, probe_plugin.ItemCreated(n=n), subject="lane", actor=SYSTEM)
            await session.commit()
        relayed: list[Envelope] = []

        async def keep(events: list[Envelope]) -> None:
            relayed.extend(events)

        await relay_batch(app.context.session_factory, keep)
        sent_back: list[int] = []

        async def send_back(_message: Any, waits: int, _delay: float) -> None:
            sent_back.append(waits)

        monkeypatch.setattr(broker, "_wait_again", send_back)
        probe_plugin.SLOW_SECONDS[0] = 0.3
        # what each worker thread hands to dramatiq's one event-loop thread
        run = broker.actors["probe"].fn.__wrapped__
        threads = asyncio.Semaphore(2)  # takes the messages in order, two at a time
        broker.lanes.waiters = 1

        async def thread(envelope: Envelope) -> None:
            async with threads:
                await run(HANDLER, envelope.model_dump(mode="json"))

        await asyncio.wait_for(asyncio.gather(*(thread(e) for e in relayed)), 30)
        assert [("lane", n) for n in BURST] == probe_plugin.APPLIED
        assert await _applied_in_order(app, "lane") == BURST
        assert broker.lanes.running(HANDLER, "lane") == []
        assert sent_back == []
    finally:
        cleanup(kind, prefix)


async def test_an_earlier_dead_letter_holds_the_later_events_of_its_subject(
    crm2_app_factory: Any,
) -> None:
    app: Crm2TestApp = await crm2_app_factory(extra_plugins=(probe_plugin,))
    first, _, _ = await _held_burst(app)
    # one published later is held too; another subject is not
    (later,) = await _publish(app, "held", [3])
    await _publish(app, "other", [4])
    await app.settle_events(within=30)
    assert "HeldBehindDeadLetter" in (await _letters(app))[later].error
    assert str(first) in (await _letters(app))[later].error
    assert probe_plugin.APPLIED == [("other", 4)]


async def test_replaying_all_applies_the_held_events_in_log_order(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Crm2TestApp = await crm2_app_factory(extra_plugins=(probe_plugin,))
    ids = await _held_burst(app)
    listed = await asyncio.to_thread(run_dead_letters_cli, monkeypatch, app.context.settings)
    lines = [line for line in listed.output.splitlines() if " event " in line[:80]]
    lines = [line for line in lines if not line.startswith(" ")]
    assert [line.split("event ")[1].split()[0] for line in lines] == [str(i) for i in ids]

    probe_plugin.FAILURES.clear()
    result = await asyncio.to_thread(
        run_dead_letters_cli, monkeypatch, app.context.settings, "--all"
    )
    assert result.exit_code == 0, result.output
    assert "replayed 3 dead letter" in result.output
    assert probe_plugin.APPLIED == [("held", 0), ("held", 1), ("held", 2)]
    assert await _letters(app) == {}
    assert await effects(app) == 3


async def test_replaying_the_first_carries_the_held_ones_along(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Crm2TestApp = await crm2_app_factory(extra_plugins=(probe_plugin,))
    ids = await _held_burst(app)
    probe_plugin.FAILURES.clear()
    letter = (await _letters(app))[ids[0]]
    result = await asyncio.to_thread(
        run_dead_letters_cli, monkeypatch, app.context.settings, "--retry", str(letter.id)
    )
    assert result.exit_code == 0, result.output
    assert "replayed 3 dead letter" in result.output
    assert probe_plugin.APPLIED == [("held", 0), ("held", 1), ("held", 2)]


async def test_replaying_a_held_one_alone_holds_it_again(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Crm2TestApp = await crm2_app_factory(extra_plugins=(probe_plugin,))
    ids = await _held_burst(app)
    letter = (await _letters(app))[ids[2]]
    result = await asyncio.to_thread(
        run_dead_letters_cli, monkeypatch, app.context.settings, "--retry", str(letter.id)
    )
    assert result.exit_code == 0, result.output
    assert set(await _letters(app)) == set(ids)
    assert probe_plugin.APPLIED == []


async def test_skipping_the_first_releases_the_held_ones(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Crm2TestApp = await crm2_app_factory(extra_plugins=(probe_plugin,))
    ids = await _held_burst(app)
    letter = (await _letters(app))[ids[0]]
    result = await asyncio.to_thread(
        run_dead_letters_cli, monkeypatch, app.context.settings, "--skip", str(letter.id)
    )
    assert result.exit_code == 0, result.output
    assert "replayed 2 held behind it" in result.output
    # the first is settled without being applied; the others follow in order
    assert probe_plugin.APPLIED == [("held", 1), ("held", 2)]
    assert await _letters(app) == {}
    (skipped,) = [x for x in await dead_letters(app) if x.id == letter.id]
    assert skipped.skipped_at is not None and skipped.retried_at is None
    assert await effects(app, ids[0]) == 0
    # a later event of the subject is applied at once, and the skip is not listed
    await _publish(app, "held", [3])
    await app.settle_events(within=30)
    assert probe_plugin.APPLIED[-1] == ("held", 3)
    listed = await asyncio.to_thread(run_dead_letters_cli, monkeypatch, app.context.settings)
    assert "0 dead letter(s) waiting" in listed.output
    again = await asyncio.to_thread(
        run_dead_letters_cli, monkeypatch, app.context.settings, "--skip", str(letter.id)
    )
    assert again.exit_code != 0 and "no dead letter" in again.output


@pytest.mark.parametrize("kind", ["amqp", "redis"])
async def test_a_worker_holds_events_behind_a_dead_letter_and_replays_them_in_order(
    kind: str, crm2_app_factory: Any, crm2_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker fails every attempt of the first (FAILURES["*"] in the worker is for
    all events, so the first fails and the others are held without running)."""
    prefix = unique_prefix()
    try:
        app: Crm2TestApp = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url(kind), broker_queue_prefix=prefix
        )
        async with worker_process(crm2_database.url, kind, prefix, failures=99, max_retries=0):
            ids = await _publish(app, "held", [0, 1, 2])

            async def all_dead() -> bool:
                return len(await _letters(app)) == 3

            await wait_for(all_dead, within=60)
        letters = await _letters(app)
        assert letters[ids[0]].error.startswith("RuntimeError: probe failure")
        assert all(letters[i].error.startswith("HeldBehindDeadLetter") for i in ids[1:])
        async with worker_process(crm2_database.url, kind, prefix):
            result = await asyncio.to_thread(
                run_dead_letters_cli, monkeypatch, app.context.settings, "--all"
            )
            assert "replayed 3 dead letter" in result.output, result.output

            async def all_applied() -> bool:
                return await effects(app) == 3

            await wait_for(all_applied, within=60)
        assert await _applied_in_order(app, "held") == [0, 1, 2]
        assert await _letters(app) == {}
    finally:
        cleanup(kind, prefix)


def test_a_wait_backs_off_to_a_lower_cap_than_a_failure_and_warns_when_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handle(session: Any, event: Any, context: Any) -> None:
        return None

    spec = EventHandler(
        name="x",
        event_types=("a",),
        handle=handle,
        min_backoff_seconds=0.5,
        max_backoff_seconds=300,
    )
    assert [wait_seconds(spec, n) for n in range(4)] == [0.5, 1.0, MAX_WAIT_SECONDS, 2.0]
    assert wait_seconds(spec, 100_000) == MAX_WAIT_SECONDS
    quick = EventHandler(name="y", event_types=("a",), handle=handle, max_backoff_seconds=0.2)
    assert wait_seconds(quick, 10) == 0.2
    with caplog.at_level(logging.WARNING, logger="crm2_core.events.waits"):
        note_wait("probe.record", "e1", LONG_WAIT_EVERY - 1)
        assert not caplog.records
        note_wait("probe.record", "e1", LONG_WAIT_EVERY)
    assert "has waited 30 times" in caplog.records[0].getMessage()
