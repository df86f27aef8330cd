from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import probe_plugin
import pytest
from helpers import dead_letters, effects, event_rows, wait_for

from crm2_core.events import publish
from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import EarlierPending, RegisteredHandler, apply_or_dead_letter
from crm2_core.events.relay import relay_batch
from crm2_core.testing import Crm2TestApp, TestDatabase, recorded_statements
from crm2_core.testing.statements import sent_to_postgresql


async def _probe(factory) -> Crm2TestApp:  # type: ignore[no-untyped-def]
    return await factory(extra_plugins=(probe_plugin,))


async def test_committed_event_is_relayed_and_handled_once(crm2_app_factory) -> None:
    app = await _probe(crm2_app_factory)
    headers = await app.login("agent")
    response = await app.client.post("/api/v1/probe/items", json={"n": 7}, headers=headers)
    assert response.status_code == 201, response.text
    event_id = uuid.UUID(response.json()["event_id"])

    async def handled() -> bool:
        return await effects(app, event_id) == 1

    await wait_for(handled)
    (row,) = await event_rows(app)
    assert row.position == 1 and row.relayed_at is not None
    assert row.type == "probe.item.created" and row.data == {"n": 7}
    assert row.actor_kind == "user"


async def test_rolled_back_request_leaves_no_event(crm2_app_factory) -> None:
    app = await _probe(crm2_app_factory)
    headers = await app.login("agent")
    response = await app.client.post("/api/v1/probe/items", json={"n": -1}, headers=headers)
    assert response.status_code == 422
    assert await event_rows(app) == []


async def test_positions_follow_relay_order_without_gaps(crm2_app_factory) -> None:
    app = await _probe(crm2_app_factory)
    headers = await app.login("agent")
    await asyncio.gather(
        *(app.client.post("/api/v1/probe/items", json={"n": i}, headers=headers) for i in range(15))
    )

    async def all_relayed() -> bool:
        rows = await event_rows(app)
        return len(rows) == 15 and all(r.position is not None for r in rows)

    await wait_for(all_relayed)
    positions = sorted(r.position for r in await event_rows(app) if r.position is not None)
    assert positions == list(range(1, 16))


async def test_failing_handler_is_retried_then_applied_once(crm2_app_factory) -> None:
    probe_plugin.FAILURES["*"] = 2  # max_retries is 2: the third attempt succeeds
    app = await _probe(crm2_app_factory)
    headers = await app.login("agent")
    response = await app.client.post("/api/v1/probe/items", json={"n": 1}, headers=headers)
    event_id = uuid.UUID(response.json()["event_id"])

    async def handled() -> bool:
        return await effects(app, event_id) == 1

    await wait_for(handled)
    assert probe_plugin.ATTEMPTS[str(event_id)] == 3
    assert await dead_letters(app) == []


async def test_handler_out_of_retries_is_dead_lettered(crm2_app_factory) -> None:
    probe_plugin.FAILURES["*"] = 99
    app = await _probe(crm2_app_factory)
    headers = await app.login("agent")
    response = await app.client.post("/api/v1/probe/items", json={"n": 1}, headers=headers)
    event_id = uuid.UUID(response.json()["event_id"])

    async def dead() -> bool:
        return len(await dead_letters(app)) == 1

    await wait_for(dead)
    (letter,) = await dead_letters(app)
    assert letter.event_id == event_id and letter.handler == "probe.record"
    assert letter.attempts == 3 and "probe failure 3" in letter.error
    assert "Traceback" in letter.traceback
    assert await effects(app) == 0


async def test_same_event_delivered_concurrently_has_one_effect(crm2_app_factory) -> None:
    app = await _probe(crm2_app_factory)
    headers = await app.login("agent")
    response = await app.client.post("/api/v1/probe/items", json={"n": 3}, headers=headers)
    event_id = uuid.UUID(response.json()["event_id"])

    async def handled() -> bool:
        return await effects(app, event_id) == 1

    await wait_for(handled)
    (row,) = await event_rows(app)
    envelope = Envelope.from_record(row)
    bus = app.context.events
    (handler,) = bus.handlers.for_event("probe.item.created")
    for copies in (1, 2, 3):
        outcomes = await asyncio.gather(
            *(apply_or_dead_letter(app.context, handler, envelope, 0) for _ in range(copies))
        )
        assert set(outcomes) == {"duplicate"}
    sent, duplicates = 1 + 1 + 2 + 3, await effects(app, event_id) - 1
    print(f"\nsame event delivered {sent} times: effects=1 duplicate_effects={duplicates}")
    assert duplicates == 0


async def test_events_relayed_but_not_handled_are_redone_at_start(crm2_app_factory) -> None:
    app = await _probe(crm2_app_factory)
    bus = app.context.events
    await bus.close()  # this process "dies" after relaying, before handling

    async with app.context.session_factory() as session:
        from crm2_core.events import publish

        for n in range(5):
            publish(session, probe_plugin.ItemCreated(n=n), subject=f"s{n}")
        await session.commit()

    async def lose(_events) -> None:  # type: ignore[no-untyped-def]
        return None

    assert await relay_batch(app.context.session_factory, lose) == 5
    assert await effects(app) == 0

    restarted = await _probe(crm2_app_factory)

    async def all_done() -> bool:
        return await effects(restarted) == 5

    await wait_for(all_done)


async def test_settle_events_waits_for_relay_and_handlers(crm2_app_factory) -> None:
    app = await _probe(crm2_app_factory)
    headers = await app.login("agent")
    for n in range(3):
        await app.client.post("/api/v1/probe/items", json={"n": n}, headers=headers)
    await app.settle_events()
    assert await effects(app) == 3


async def test_handler_applies_a_subjects_events_in_log_order(crm2_app_factory) -> None:
    from probe_plugin import ItemCreated
    from sqlalchemy import select

    from crm2_core.events import publish
    from crm2_core.events.models import AppliedEvent

    app = await _probe(crm2_app_factory)
    async with app.context.session_factory() as session:
        older = publish(session, ItemCreated(n=1), subject="same")
        newer = publish(session, ItemCreated(n=2), subject="same")
        probe_plugin.FAILURES[str(older.id)] = 1  # the older event fails its first attempt
        await session.commit()

    async def both() -> bool:
        return await effects(app) == 2

    await wait_for(both)
    async with app.context.session_factory() as session:
        rows = await session.execute(select(AppliedEvent).order_by(AppliedEvent.applied_at))
        applied = [a.event_id for a in rows.scalars()]
    assert applied == [older.id, newer.id]
    assert probe_plugin.ATTEMPTS[str(older.id)] == 2


async def test_retention_sweep_keeps_positions_growing(crm2_app_factory) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from crm2_core.db import utcnow
    from crm2_core.events import publish
    from crm2_core.events.models import EventRecord

    app = await _probe(crm2_app_factory)
    bus = app.context.events
    await bus.close()  # no background relay or sweep: this test decides when each runs
    async with app.context.session_factory() as session:
        for n in range(3):
            publish(session, probe_plugin.ItemCreated(n=n), subject=f"old{n}")
        await session.commit()
    assert await bus.relay_once() == 3
    async with app.context.session_factory() as session:
        await session.execute(
            update(EventRecord).values(occurred_at=utcnow() - timedelta(days=400))
        )
        await session.commit()
    await bus.sweep()
    assert [r.position for r in await event_rows(app)] == [3]  # the newest always stays
    async with app.context.session_factory() as session:
        publish(session, probe_plugin.ItemCreated(n=9), subject="new")
        await session.commit()
    assert await bus.relay_once() == 1
    assert [r.position for r in await event_rows(app)] == [3, 4]


async def test_a_handler_joining_late_is_not_held_up_by_history(crm2_app_factory) -> None:
    from sqlalchemy import delete, func, select, update

    from crm2_core.events import publish
    from crm2_core.events.models import AppliedEvent, EventRecord, HandlerCursor

    app = await _probe(crm2_app_factory)
    async with app.context.session_factory() as session:
        publish(session, probe_plugin.ItemCreated(n=1), subject="same")
        await session.commit()
    await app.settle_events()
    # As if probe.record had been installed only now: it never applied the old event.
    async with app.context.session_factory() as session:
        top = (await session.execute(select(func.max(EventRecord.position)))).scalar()
        await session.execute(update(HandlerCursor).values(start_position=top))
        await session.execute(delete(AppliedEvent))
        publish(session, probe_plugin.ItemCreated(n=2), subject="same")
        await session.commit()
    await app.settle_events()
    assert await effects(app) == 2
    assert await dead_letters(app) == []


async def test_a_handler_waits_for_the_relay_to_commit_the_position(crm2_app_factory) -> None:
    from sqlalchemy import update

    from crm2_core.db import utcnow
    from crm2_core.events import publish
    from crm2_core.events.models import EventRecord

    app = await _probe(crm2_app_factory)
    bus = app.context.events
    await bus.close()
    async with app.context.session_factory() as session:
        row = publish(session, probe_plugin.ItemCreated(n=5), subject="late")
        await session.commit()
    handed_over = Envelope.from_record(row).model_copy(update={"position": 1})
    (handler,) = bus.handlers.for_event("probe.item.created")
    task = asyncio.create_task(apply_or_dead_letter(app.context, handler, handed_over, 0))
    await asyncio.sleep(0.2)  # the broker already has it; the relay has not committed yet
    assert not task.done()
    async with app.context.session_factory() as session:
        await session.execute(
            update(EventRecord)
            .where(EventRecord.id == row.id)
            .values(position=1, relayed_at=utcnow())
        )
        await session.commit()
    assert await task == "applied"


async def _hand_over_while_relay_holds_the_row(
    app: Crm2TestApp, hold_seconds: float, handler: RegisteredHandler | None = None
) -> tuple[asyncio.Task, float]:  # type: ignore[type-arg]
    """An event handed to its handler while a "relay" transaction holds its row FOR UPDATE
    with the position set, committing after ``hold_seconds``; (the handler's task, the
    loop time of that commit)."""
    from sqlalchemy import select

    from crm2_core.db import utcnow
    from crm2_core.events import publish
    from crm2_core.events.models import EventRecord

    bus = app.context.events
    await bus.close()
    async with app.context.session_factory() as session:
        row = publish(session, probe_plugin.ItemCreated(n=6), subject="held")
        await session.commit()
    loop = asyncio.get_running_loop()
    async with app.context.session_factory() as relay:
        held = (
            await relay.execute(
                select(EventRecord).where(EventRecord.id == row.id).with_for_update()
            )
        ).scalar_one()
        held.position, held.relayed_at = 1, utcnow()
        await relay.flush()
        handed_over = Envelope.from_record(held)
        if handler is None:
            (handler,) = bus.handlers.for_event("probe.item.created")
        task = asyncio.create_task(apply_or_dead_letter(app.context, handler, handed_over, 0))
        await asyncio.sleep(hold_seconds)
        await relay.commit()
        committed_at = loop.time()
    return task, committed_at


async def test_handler_wakes_when_the_relay_commits_not_on_a_poll(
    crm2_app_factory, crm2_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the handler waits on the relay's row lock, so it does not depend on
    the poll interval (made absurdly long here) to see the committed position."""
    if crm2_database.backend != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite polls)")
    from crm2_core.events import handlers

    monkeypatch.setattr(handlers, "POSITION_POLL_SECONDS", 30.0)
    app = await _probe(crm2_app_factory)
    task, committed_at = await _hand_over_while_relay_holds_the_row(app, 0.3)
    assert await asyncio.wait_for(task, 5) == "applied"
    assert asyncio.get_running_loop().time() - committed_at < 2.0
    assert await effects(app) == 1


async def test_handler_that_waited_for_the_relay_runs_with_the_configured_lock_timeout(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """The wait's lock timeout is put back by the statement that ends the wait: the
    handler's own statements wait for locks as configured, and the claim follows the
    wait directly (no round trip in between to reset the setting)."""
    if crm2_database.backend != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite polls)")
    from sqlalchemy import text

    from crm2_hookspecs import EventHandler

    seen_timeouts: list[str] = []

    async def record(session, _event, _context) -> None:  # type: ignore[no-untyped-def]
        seen_timeouts.append((await session.execute(text("SHOW lock_timeout"))).scalar())

    spec = EventHandler(name="timeouts", event_types=("probe.item.created",), handle=record)
    app = await _probe(crm2_app_factory)
    async with app.context.session_factory() as session:
        configured = (await session.execute(text("SHOW lock_timeout"))).scalar()
    # the handler runs in a task of its own: every task's statements
    with recorded_statements(app.context.engine, this_task_only=False) as seen:
        handler = RegisteredHandler("probe.timeouts", "probe", spec)
        task, _ = await _hand_over_while_relay_holds_the_row(app, 0.3, handler)
        assert await asyncio.wait_for(task, 5) == "applied"
    assert seen_timeouts == [configured]
    waited = next(n for n, s in enumerate(seen) if "FOR KEY SHARE" in s and "SKIP" not in s)
    assert seen[waited + 1].startswith("INSERT INTO core_applied_event"), seen[waited:]


async def test_handler_gives_up_waiting_for_a_relay_that_never_commits(
    crm2_app_factory, crm2_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait on the relay's lock is bounded by POSITION_WAIT_SECONDS: then it is retried."""
    from crm2_core.events import handlers

    if crm2_database.backend != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite polls)")
    monkeypatch.setattr(handlers, "POSITION_WAIT_SECONDS", 0.3)
    app = await _probe(crm2_app_factory)
    task, _ = await _hand_over_while_relay_holds_the_row(app, 1.5)
    with pytest.raises(handlers.OutOfOrder):
        await asyncio.wait_for(task, 5)
    assert await effects(app) == 0


async def test_relay_waits_for_a_briefly_locked_row_and_keeps_write_order(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """A handler's key-share lock on an unrelayed row (its relay rolled back) must not
    make the next relay skip that row and give later rows earlier positions."""
    if crm2_database.backend != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    from sqlalchemy import select

    from crm2_core.events import publish
    from crm2_core.events.models import EventRecord

    app = await _probe(crm2_app_factory)
    await app.context.events.close()
    async with app.context.session_factory() as session:
        rows = [publish(session, probe_plugin.ItemCreated(n=n), subject="same") for n in range(3)]
        await session.commit()

    async def sink(_events) -> None:  # type: ignore[no-untyped-def]
        return None

    async with app.context.session_factory() as handler_check:
        await handler_check.execute(
            select(EventRecord.position)
            .where(EventRecord.id == rows[0].id)
            .with_for_update(read=True, key_share=True)
        )
        relay = asyncio.create_task(relay_batch(app.context.session_factory, sink))
        await asyncio.sleep(0.3)
        assert not relay.done(), "the relay went past a locked row"
    assert await asyncio.wait_for(relay, 5) == 3
    positions = [r.position for r in await event_rows(app)]  # in write (sequence) order
    assert positions == [1, 2, 3]


async def test_relay_moves_the_handlers_marks_in_the_batchs_statement(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """PostgreSQL, a broker outside the process (handlers tracked): the batch's statement
    also moves each tracked handler's ``delivered_through`` (when it was at the batch's
    start), so once the broker has the batch only the commit is left."""
    if crm2_database.backend != "postgresql":
        pytest.skip("SQLite reads, numbers and flushes (its writers are serialised anyway)")
    from sqlalchemy import select

    from crm2_core.events import publish
    from crm2_core.events.models import HandlerCursor

    app = await _probe(crm2_app_factory)
    await app.context.events.close()
    async with app.context.session_factory() as session:
        session.add_all(
            [
                HandlerCursor(handler="probe.at_start", start_position=0, delivered_through=0),
                HandlerCursor(handler="probe.behind", start_position=0, delivered_through=None),
            ]
        )
        for n in range(3):
            publish(session, probe_plugin.ItemCreated(n=n), subject="marks")
        await session.commit()
    sent: list[Envelope] = []

    async def keep(events) -> None:  # type: ignore[no-untyped-def]
        sent.extend(events)

    tracked = ["probe.at_start", "probe.behind"]
    with recorded_statements(app.context.engine) as seen:
        assert await relay_batch(app.context.session_factory, keep, tracked=tracked) == 3
    assert len(seen) == 2 and "pg_try_advisory_xact_lock" in seen[0], seen
    assert [e.position for e in sent] == [1, 2, 3]
    async with app.context.session_factory() as session:
        marks = dict(
            (
                await session.execute(
                    select(HandlerCursor.handler, HandlerCursor.delivered_through)
                )
            ).all()
        )
    assert marks["probe.at_start"] == 3
    assert marks["probe.behind"] is None  # a gap stays for catch-up


async def test_sweep_keeps_the_newest_events_applied_record(crm2_app_factory) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from crm2_core.db import utcnow
    from crm2_core.events import publish
    from crm2_core.events.models import AppliedEvent, EventRecord

    app = await _probe(crm2_app_factory)
    async with app.context.session_factory() as session:
        publish(session, probe_plugin.ItemCreated(n=1), subject="kept")
        await session.commit()
    await app.settle_events()
    old = utcnow() - timedelta(days=400)
    async with app.context.session_factory() as session:
        await session.execute(update(EventRecord).values(occurred_at=old))
        await session.execute(update(AppliedEvent).values(applied_at=old))
        await session.commit()
    await app.context.events.sweep()
    async with app.context.session_factory() as session:
        publish(session, probe_plugin.ItemCreated(n=2), subject="kept")
        await session.commit()
    await app.settle_events()
    assert await effects(app) == 2
    assert await dead_letters(app) == []


async def _relayed_unhandled(app: Crm2TestApp, count: int) -> list[Envelope]:
    """``count`` events relayed (positions committed) that no handler has seen."""
    from crm2_core.events import publish

    await app.context.events.close()
    async with app.context.session_factory() as session:
        for n in range(count):
            publish(session, probe_plugin.ItemCreated(n=n), subject=f"quiet{n}")
        await session.commit()
    sent: list[Envelope] = []

    async def keep(events) -> None:  # type: ignore[no-untyped-def]
        sent.extend(events)

    assert await relay_batch(app.context.session_factory, keep) == count
    return sent


async def test_handler_claims_a_committed_event_in_one_statement(crm2_app_factory) -> None:
    """The relay has committed (the usual case): one INSERT checks that the position is
    committed and nothing earlier is pending, and writes the applied record; then the
    handler's own statements, then the commit."""
    app = await _probe(crm2_app_factory)
    (envelope,) = await _relayed_unhandled(app, 1)
    (handler,) = app.context.events.handlers.for_event("probe.item.created")
    with recorded_statements(app.context.engine) as seen:
        assert await apply_or_dead_letter(app.context, handler, envelope, 0) == "applied"
    # the handler's own (probe_) statements aside (they run in its time-limit task)
    core = [s for s in seen if "probe_" not in s and ("core_" in s or "lock_timeout" in s)]
    assert len(core) == 1, core
    assert core[0].startswith("INSERT INTO core_applied_event")
    assert await effects(app, envelope.id) == 1


async def test_a_delivery_with_a_position_the_relay_did_not_commit_is_not_applied(
    crm2_app_factory,
) -> None:
    """A relay that sent a batch and rolled back: the event was committed later at
    another position. The stale delivery's claim finds no event at its position and
    writes nothing; the delivery of the committed position is applied once."""
    app = await _probe(crm2_app_factory)
    (envelope,) = await _relayed_unhandled(app, 1)
    (handler,) = app.context.events.handlers.for_event("probe.item.created")
    stale = envelope.model_copy(update={"position": envelope.position + 7})
    assert await apply_or_dead_letter(app.context, handler, stale, 0) == "duplicate"
    assert await effects(app, envelope.id) == 0
    assert await apply_or_dead_letter(app.context, handler, envelope, 0) == "applied"
    assert await apply_or_dead_letter(app.context, handler, envelope, 0) == "duplicate"
    assert await effects(app, envelope.id) == 1


async def test_relay_numbers_and_marks_a_batch_in_one_statement(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """PostgreSQL: after the relay lock, one UPDATE … RETURNING claims, numbers and marks
    the batch (it was a SELECT, a max() and an UPDATE per row)."""
    if crm2_database.backend != "postgresql":
        pytest.skip("SQLite reads, numbers and flushes (its writers are serialised anyway)")
    app = await _probe(crm2_app_factory)
    await app.context.events.close()
    from crm2_core.events import publish

    async with app.context.session_factory() as session:
        for n in range(3):
            publish(session, probe_plugin.ItemCreated(n=n), subject="batch")
        await session.commit()
    sent: list[Envelope] = []

    async def keep(events) -> None:  # type: ignore[no-untyped-def]
        sent.extend(events)

    with recorded_statements(app.context.engine) as seen:
        assert await relay_batch(app.context.session_factory, keep) == 3
    assert len(seen) == 2 and "pg_try_advisory_xact_lock" in seen[0], seen
    assert [e.position for e in sent] == [1, 2, 3]
    assert [e.data["n"] for e in sent] == [0, 1, 2]
    assert [r.position for r in await event_rows(app)] == [1, 2, 3]
    assert all(r.relayed_at is not None for r in await event_rows(app))


async def test_relay_and_claim_statements_are_built_once(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """Each delivery's claim (and, on PostgreSQL, each relay batch's UPDATE) runs the same
    built statement with new parameters: no construction or cache key per event."""
    from sqlalchemy import event

    app = await _probe(crm2_app_factory)
    await app.context.events.close()
    (handler,) = app.context.events.handlers.for_event("probe.item.created")
    invoked: dict[str, list[object]] = {"INSERT INTO core_applied_event": [], "WITH crm2_batch": []}

    def record(_conn, _cursor, statement, _params, context, *_args) -> None:  # type: ignore[no-untyped-def]
        for start, seen in invoked.items():
            if statement.startswith(start):
                seen.append(context.invoked_statement)

    engine = app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(2):
            (envelope,) = await _relayed_unhandled(app, 1)
            assert await apply_or_dead_letter(app.context, handler, envelope, 0) == "applied"
    finally:
        event.remove(engine, "before_cursor_execute", record)
    claims, batches = invoked.values()
    assert len(claims) == 2 and claims[0] is claims[1]
    if crm2_database.backend == "postgresql":
        assert len(batches) == 2 and batches[0] is batches[1]
    assert await effects(app) == 2


def test_a_claim_names_its_handlers_event_types_in_one_parameter_on_postgresql() -> None:
    """A handler taking every event type (notifications' rules) claims with one SQL text
    whatever the number of types: ``= ANY($n)``, not an ``IN`` list rendered again at
    every execution."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    from crm2_core.events.handlers import _claim

    def sql(types: int) -> str:
        claim = _claim(tuple(f"probe.type{n}" for n in range(types)), "postgresql")
        return str(claim.compile(dialect=dialect()))

    assert "POSTCOMPILE" not in sql(100) and "= ANY (" in sql(100)
    assert sql(3) == sql(100)


async def test_in_process_broker_gets_a_batch_once_its_positions_are_committed(
    crm2_app_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """memory://: the batch reaches the handlers after the relay's commit (their durability
    is the log), so a handler never waits on the relay's row lock for its position."""
    from sqlalchemy import select

    from crm2_core.events import publish
    from crm2_core.events.memory_broker import MemoryBroker
    from crm2_core.events.models import EventRecord

    seen_committed: list[bool] = []
    deliver = MemoryBroker.deliver
    apps: list[Crm2TestApp] = []

    async def checking(broker: MemoryBroker, events, to=None) -> None:  # type: ignore[no-untyped-def]
        if apps and any(e.subject == "after-commit" for e in events):
            async with apps[0].context.session_factory() as other:  # another connection
                ids = [e.id for e in events]
                stmt = select(EventRecord.position).where(EventRecord.id.in_(ids))  # type: ignore[attr-defined]
                positions = list((await other.execute(stmt)).scalars())
            seen_committed.append(sorted(p or 0 for p in positions) == [e.position for e in events])
        await deliver(broker, events, to)

    # On the class, before the app starts: the app's own relay loop reads ``deliver``
    # when a pass begins, so patching the instance could miss a pass already running.
    monkeypatch.setattr(MemoryBroker, "deliver", checking)
    app = await _probe(crm2_app_factory)
    apps.append(app)
    async with app.context.session_factory() as session:
        publish(session, probe_plugin.ItemCreated(n=2), subject="after-commit")
        await session.commit()
    await app.settle_events()
    assert seen_committed == [True]
    assert await effects(app) == 1


async def test_event_row_written_with_plain_rows_commits_and_rolls_back_with_them(
    crm2_app_factory,
) -> None:
    """``publish_row`` + ``insert_together`` with ``NewRow``s (no ORM objects): the change
    and its event are written together, in order, and a rollback leaves neither; a
    committed one wakes the relay and reaches the handler like ``publish``'s."""
    from sqlalchemy import func, select

    from crm2_core.api import insert_together, new_row, publish_row

    app = await _probe(crm2_app_factory)

    async def write(n: int, *, commit: bool) -> uuid.UUID:
        async with app.context.session_factory() as session:
            effect = new_row(probe_plugin.ProbeEffect, event_id=uuid.uuid4(), subject="s", n=n)
            record = publish_row(session, probe_plugin.ItemCreated(n=n), subject="plain")
            await insert_together(session, [effect, record])
            assert effect.values["id"] is not None and record.values["id"] is not None
            await (session.commit() if commit else session.rollback())
        return uuid.UUID(str(record.values["id"]))

    await write(-5, commit=False)
    assert await event_rows(app) == []
    async with app.context.session_factory() as session:
        count = select(func.count()).select_from(probe_plugin.ProbeEffect)
        assert (await session.execute(count)).scalar_one() == 0
    event_id = await write(3, commit=True)

    async def handled() -> bool:
        return await effects(app, event_id) == 1

    await wait_for(handled)
    (row,) = await event_rows(app)
    assert row.id == event_id and row.data == {"n": 3} and row.position == 1
    assert row.actor_kind == "system"


async def test_publish_many_copies_in_order_after_pending_events_and_rolls_back(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """``publish_many`` of a bulk writer's events: a COPY on PostgreSQL (no INSERT of
    them goes through SQLAlchemy), in the session's transaction (a rollback leaves none),
    after an event ``publish`` added first; committed, they are relayed and handled."""
    from sqlalchemy import event

    from crm2_core.api import publish, publish_many
    from crm2_core.db.bulk import COPY_FROM_ROWS

    app = await _probe(crm2_app_factory)
    count = COPY_FROM_ROWS + 4
    inserts: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO core_event"):
            inserts.append(statement)

    async def write(*, commit: bool) -> None:
        async with app.context.session_factory() as session:
            publish(session, probe_plugin.ItemCreated(n=0), subject="first")
            many = [(probe_plugin.ItemCreated(n=n), f"s{n}") for n in range(1, count + 1)]
            assert await publish_many(session, many) == count
            await (session.commit() if commit else session.rollback())

    engine = app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await write(commit=False)
        assert await event_rows(app) == []
        inserts.clear()
        await write(commit=True)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # publish()'s ORM row is an INSERT either way; the bulk one is one only without COPY
    assert len(inserts) == (1 if crm2_database.backend == "postgresql" else 2)

    async def handled() -> bool:
        return await effects(app) == count + 1

    await wait_for(handled)
    rows = await event_rows(app)
    assert [r.data["n"] for r in rows] == list(range(count + 1))
    assert [r.subject for r in rows] == ["first", *(f"s{n}" for n in range(1, count + 1))]
    assert [r.position for r in rows] == list(range(1, count + 2))
    assert {(r.type, r.version, r.actor_kind, r.actor_id) for r in rows} == {
        ("probe.item.created", 1, "system", None)
    }
    assert len({r.id for r in rows}) == count + 1 and len({r.occurred_at for r in rows[1:]}) == 1


def _skipping(handler: RegisteredHandler, asked: list[uuid.UUID]) -> RegisteredHandler:
    """``handler`` with a ``skips`` that answers ``True`` (and notes each event asked of)."""

    async def skips(_session, event, _context) -> bool:  # type: ignore[no-untyped-def]
        asked.append(event.id)
        return True

    return RegisteredHandler(handler.id, handler.plugin, replace(handler.spec, skips=skips))


async def test_an_event_its_handler_skips_is_recorded_by_one_statement(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """``skips`` answers ``True``: ``handle`` does not run and the claim is sent alone, its
    own transaction on PostgreSQL (no ``BEGIN``, no ``COMMIT``); a redelivery is a
    duplicate, as for any claim."""
    app = await _probe(crm2_app_factory)
    (envelope,) = await _relayed_unhandled(app, 1)
    (registered,) = app.context.events.handlers.for_event("probe.item.created")
    asked: list[uuid.UUID] = []
    handler = _skipping(registered, asked)
    with sent_to_postgresql() as sent:
        assert await apply_or_dead_letter(app.context, handler, envelope, 0) == "skipped"
    kinds = [s.split()[0] for s in sent]
    assert kinds == (["INSERT"] if crm2_database.backend == "postgresql" else []), sent
    assert asked == [envelope.id]
    assert await app.applied(handler.id, envelope.id)
    assert await effects(app, envelope.id) == 0
    assert await apply_or_dead_letter(app.context, handler, envelope, 0) == "duplicate"
    assert await apply_or_dead_letter(app.context, registered, envelope, 0) == "duplicate"
    assert await effects(app, envelope.id) == 0


async def test_a_skipped_event_still_waits_for_the_earlier_events_of_its_subject(
    crm2_app_factory,
) -> None:
    """The skip's claim checks the order as any claim does: behind an earlier event of the
    subject that is still pending for the handler it records nothing and waits; once that
    one is applied, it is recorded without running ``handle``."""
    app = await _probe(crm2_app_factory)
    await app.relay_by_hand()
    async with app.context.session_factory() as session:
        for n in range(2):
            publish(session, probe_plugin.ItemCreated(n=n), subject="ordered")
        await session.commit()
    first, second = await app.relay_by_hand()
    (registered,) = app.context.events.handlers.for_event("probe.item.created")
    handler = _skipping(registered, [])
    with pytest.raises(EarlierPending):
        await apply_or_dead_letter(app.context, handler, second, 0)
    assert not await app.applied(handler.id, second.id)
    assert await apply_or_dead_letter(app.context, registered, first, 0) == "applied"
    assert await apply_or_dead_letter(app.context, handler, second, 0) == "skipped"
    assert await app.applied(handler.id, second.id)
    assert await effects(app, first.id) == 1 and await effects(app, second.id) == 0
