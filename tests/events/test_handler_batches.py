"""``EventHandler.handle_batch``: a relay batch applied in one transaction, guarantees kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import batch_probe
import probe_plugin
import pytest
from helpers import wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from crm2_core.context import TRACING
from crm2_core.events import SYSTEM, Envelope, memory_broker, publish
from crm2_core.events.handler_batches import apply_batch
from crm2_core.events.handlers import apply_or_dead_letter
from crm2_core.events.memory_broker import pending_jobs
from crm2_core.events.models import AppliedEvent, DeadLetter, EventRecord
from crm2_core.events.relay import relay_batch
from crm2_core.testing import Crm2TestApp

HANDLER = "batcher.effects"


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    batch_probe.CALLS.clear()
    batch_probe.FAIL_BATCH[0] = False
    batch_probe.SLOW_FIRST_BATCH[0] = 0.0
    yield
    batch_probe.FAIL_BATCH[0] = False
    batch_probe.SLOW_FIRST_BATCH[0] = 0.0


async def _app(factory: Any) -> Crm2TestApp:
    app: Crm2TestApp = await factory(extra_plugins=(probe_plugin, batch_probe))
    return app


async def _publish(app: Crm2TestApp, items: list[tuple[str, int]]) -> None:
    """The events in one transaction: the relay moves them as one batch."""
    async with app.context.session_factory() as session:
        for subject, n in items:
            publish(session, probe_plugin.ItemCreated(n=n), subject=subject, actor=SYSTEM)
        await session.commit()


async def _effects(app: Crm2TestApp) -> list[tuple[str, int]]:
    async with app.context.session_factory() as session:
        stmt = select(probe_plugin.ProbeEffect.subject, probe_plugin.ProbeEffect.n).where(
            probe_plugin.ProbeEffect.subject.startswith(batch_probe.SUBJECT_PREFIX)  # type: ignore[attr-defined]
        )
        return sorted((s, n) for s, n in (await session.execute(stmt)).all())


async def _applied(app: Crm2TestApp) -> int:
    async with app.context.session_factory() as session:
        stmt = select(func.count()).select_from(AppliedEvent).where(AppliedEvent.handler == HANDLER)
        return int((await session.execute(stmt)).scalar_one())


def _handler(app: Crm2TestApp) -> Any:
    handler = app.context.events.handlers.get(HANDLER)
    assert handler is not None
    return handler


async def test_a_relay_batch_is_applied_in_one_call_each_event_once(crm2_app_factory) -> None:
    app = await _app(crm2_app_factory)
    await _publish(app, [(f"s{n}", n) for n in range(30)])
    await app.settle_events()
    assert list(batch_probe.CALLS) == [("batch", list(range(30)))]
    assert await _effects(app) == sorted((f"batcher:s{n}", n) for n in range(30))
    assert await _applied(app) == 30


async def test_a_subjects_events_in_one_batch_are_claimed_together_in_log_order(
    crm2_app_factory,
) -> None:
    """Both events of ``a`` in one batch: nothing earlier of ``a`` is pending outside it,
    so both are claimed and handed over in log order, in the one transaction."""
    app = await _app(crm2_app_factory)
    await _publish(app, [("a", 0), ("b", 1), ("a", 2)])
    await app.settle_events()
    assert batch_probe.CALLS == [("batch", [0, 1, 2])]
    assert await _effects(app) == [("batcher:a", 0), ("batcher:a", 2), ("batcher:b", 1)]
    assert await _applied(app) == 3


async def test_a_pending_event_outside_the_batch_holds_its_subjects_later_ones(
    crm2_app_factory,
) -> None:
    """``a``'s second event is pending and not in the batch: the batch's ``a`` events
    before it are claimed, those after it are left to the one-event path."""
    app = await _app(crm2_app_factory)
    await app.context.events.close()  # no relay, no handlers: the test hands batches over
    await _publish(app, [("a", 0), ("a", 1), ("b", 2), ("a", 3), ("a", 4)])
    sent: list[Envelope] = []

    async def keep(events: Any) -> None:
        sent.extend(events)

    assert await relay_batch(app.context.session_factory, keep) == 5
    a0, a1, b2, a3, a4 = sent
    handler = _handler(app)
    assert await apply_batch(app.context, handler, [a0, b2, a3, a4]) == [a3, a4]
    assert batch_probe.CALLS == [("batch", [0, 2])]
    # once the one in between is applied, the rest go as one batch
    assert await apply_or_dead_letter(app.context, handler, a1, 0) == "applied"
    assert await apply_batch(app.context, handler, [a3, a4]) == []
    assert batch_probe.CALLS[1:] == [("one", 1), ("batch", [3, 4])]
    assert await _effects(app) == [("batcher:a", n) for n in (0, 1, 3, 4)] + [("batcher:b", 2)]


async def test_batches_that_come_while_one_runs_wait_for_it_and_go_as_one(
    crm2_app_factory,
) -> None:
    """One subject in three relay batches, the first slow: the two later ones are not
    claimed beside it (their events would all wait for it, one by one) but merged and
    handed over once it is done, every event in a batch, in log order."""
    app = await _app(crm2_app_factory)
    batch_probe.SLOW_FIRST_BATCH[0] = 0.5
    await _publish(app, [("a", 0), ("a", 1)])
    await wait_for(lambda: _called(batch_probe.CALLS))
    await _publish(app, [("a", 2), ("a", 3)])
    await _publish(app, [("a", 4), ("a", 5)])
    await app.settle_events()
    assert batch_probe.CALLS[0] == ("batch", [0, 1])
    assert all(kind == "batch" for kind, _ in batch_probe.CALLS), batch_probe.CALLS
    assert [n for _, ns in batch_probe.CALLS for n in ns] == list(range(6))
    assert len(batch_probe.CALLS) <= 3
    assert await _applied(app) == 6


async def test_a_hot_subject_under_concurrent_writers_is_applied_in_order_without_waits(
    crm2_app_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight writers, one event each per transaction, all on one record (bench scenario
    12a: allocations of one payment). Each handler applies them in log order, and the
    broker parks a later event behind an earlier one running or waiting here instead
    of letting its claim fail in the database (before: about three failed claims, each
    a transaction, per event). The parking timer's fallback look is set beyond the
    test: every parked event must be woken by the one it waits for."""
    monkeypatch.setattr(memory_broker, "MAX_WAIT_SECONDS", 30.0)
    app = await crm2_app_factory(
        extra_plugins=(probe_plugin, batch_probe), plugin_settings={"metrics": {"enabled": True}}
    )

    async def writer(w: int) -> None:
        for i in range(10):
            await _publish(app, [("hot", w * 100 + i)])

    await asyncio.gather(*(writer(w) for w in range(8)))
    await app.settle_events(within=60)
    async with app.context.session_factory() as session:
        stmt = (
            select(EventRecord.data)
            .where(EventRecord.subject == "hot")
            .order_by(EventRecord.position)  # type: ignore[arg-type]
        )
        in_log_order = [data["n"] for data in (await session.execute(stmt)).scalars()]
    assert len(in_log_order) == 80
    handled = [n for kind, ns in batch_probe.CALLS for n in (ns if kind == "batch" else [ns])]
    assert handled == in_log_order
    assert [n for _subject, n in probe_plugin.APPLIED] == in_log_order
    metrics = (await app.client.get("/metrics")).text
    runs = {
        (s.labels["handler"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "crm2_handler_runs_total"
    }
    assert runs[(HANDLER, "applied")] == runs[("probe.record", "applied")] == 80
    assert (HANDLER, "waiting") not in runs and ("probe.record", "waiting") not in runs


async def _called(calls: list[Any]) -> bool:
    return bool(calls)


async def test_a_failed_batch_writes_nothing_and_each_event_is_applied_alone(
    crm2_app_factory,
) -> None:
    app = await _app(crm2_app_factory)
    batch_probe.FAIL_BATCH[0] = True
    await _publish(app, [("a", 0), ("b", 1), ("c", 2)])
    await app.settle_events()
    assert batch_probe.CALLS[0] == ("batch", [0, 1, 2])
    assert sorted(batch_probe.CALLS[1:]) == [("one", 0), ("one", 1), ("one", 2)]
    assert await _effects(app) == [("batcher:a", 0), ("batcher:b", 1), ("batcher:c", 2)]
    assert await _applied(app) == 3
    async with app.context.session_factory() as session:
        assert (await session.execute(select(DeadLetter))).first() is None


async def test_a_redelivered_batch_changes_nothing(crm2_app_factory) -> None:
    app = await _app(crm2_app_factory)
    await app.context.events.close()  # no relay, no handlers: the test hands the batch over
    await _publish(app, [("a", 0), ("b", 1)])
    sent: list[Envelope] = []

    async def keep(events: Any) -> None:
        sent.extend(events)

    assert await relay_batch(app.context.session_factory, keep) == 2
    handler = _handler(app)
    assert await apply_batch(app.context, handler, sent) == []
    # again: nothing claimed, both left to the one-event path, which finds them applied
    assert await apply_batch(app.context, handler, sent) == sent
    for event in sent:
        assert await apply_or_dead_letter(app.context, handler, event, 0) == "duplicate"
    assert batch_probe.CALLS == [("batch", [0, 1])]
    assert await _applied(app) == 2 and len(await _effects(app)) == 2


async def test_work_left_by_a_stopped_process_is_queued_as_batches(crm2_app_factory) -> None:
    app = await _app(crm2_app_factory)
    await app.context.events.close()
    await _publish(app, [(f"s{n}", n) for n in range(5)])

    async def nowhere(events: Any) -> None:
        return None

    assert await relay_batch(app.context.session_factory, nowhere) == 5
    jobs = await pending_jobs(app.context, app.context.events.handlers)
    mine = [job for job in jobs if job.handler.id == HANDLER]
    assert [[e.data["n"] for e in job.events] for job in mine] == [[0, 1, 2, 3, 4]]
    # the probe's own handler has no handle_batch: one event per job
    others = [job for job in jobs if job.handler.id == "probe.record"]
    assert [len(job.events) for job in others] == [1] * 5


async def test_a_batch_has_one_handler_span_linked_to_each_traced_event(
    crm2_app_factory,
) -> None:
    app: Crm2TestApp = await crm2_app_factory(
        extra_plugins=(probe_plugin, batch_probe), plugin_settings={"tracing": {"enabled": True}}
    )
    tracing = app.context.get(TRACING)
    with tracing.tracer.start_as_current_span("publisher") as publisher:
        await _publish(app, [("a", 0), ("b", 1)])
    await app.settle_events()
    (span,) = [s for s in tracing.finished_spans() if s.name == f"handle {HANDLER}"]
    assert span.attributes["messaging.batch.message_count"] == 2
    trace_id = publisher.get_span_context().trace_id
    assert [link.context.trace_id for link in span.links] == [trace_id, trace_id]


async def test_an_event_behind_a_dead_letter_is_not_claimed_by_a_batch_but_held(
    crm2_app_factory,
) -> None:
    """``a``'s first event is dead-lettered for the handler: a batch leaves ``a``'s next
    one out, and the one-event path holds it behind that dead letter."""
    app = await _app(crm2_app_factory)
    await app.context.events.close()
    await _publish(app, [("a", 0), ("b", 1), ("a", 2)])
    sent: list[Envelope] = []

    async def keep(events: Any) -> None:
        sent.extend(events)

    assert await relay_batch(app.context.session_factory, keep) == 3
    first, b, later = sent
    async with app.context.session_factory() as session:
        session.add(
            DeadLetter(
                handler=HANDLER,
                event_id=first.id,
                position=first.position or 0,
                attempts=3,
                error="RuntimeError: boom",
                traceback="",
            )
        )
        await session.commit()
    handler = _handler(app)
    assert await apply_batch(app.context, handler, [b, later]) == [later]
    assert await apply_or_dead_letter(app.context, handler, later, 0) == "held"
    assert batch_probe.CALLS == [("batch", [1])]
    async with app.context.session_factory() as session:
        held = (
            await session.execute(select(DeadLetter).where(DeadLetter.event_id == later.id))
        ).scalar_one()
    assert held.error.startswith("HeldBehindDeadLetter") and str(first.id) in held.error


async def test_the_claim_plans_for_its_values_and_names_the_batch_subjects(
    crm2_app_factory,
) -> None:
    """PostgreSQL: the claim's transaction asks for custom plans first (a generic plan made
    on an empty log scans it whole for every batch as it grows), and the claim lists the
    batch's subjects so the subject index can find their earlier events."""
    app = await _app(crm2_app_factory)
    seen: list[tuple[str, Any]] = []
    before: dict[int, str] = {}  # per connection: the statement before its batch claim

    def statement(conn: Any, _cursor: Any, text: str, params: Any, *_: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        if "crm2_claimed" in text:
            before.setdefault(0, before.get(key, ""))
        before[key] = text
        seen.append((text, params))

    engine = app.context.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", statement)
    try:
        await _publish(app, [(f"s{n}", n) for n in range(5)])
        await app.settle_events()
    finally:
        sa_event.remove(engine, "before_cursor_execute", statement)
    assert list(batch_probe.CALLS) == [("batch", list(range(5)))]
    claims = [i for i, (text, _) in enumerate(seen) if "crm2_claimed" in text]  # batch claims
    assert claims
    claim_text, claim_params = seen[claims[0]]
    assert all(f"s{n}" in str(claim_params) for n in range(5)), (claim_text, claim_params)
    if engine.dialect.name == "postgresql":
        assert "plan_cache_mode = force_custom_plan" in before[0]
