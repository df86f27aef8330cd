"""Per-subject order under load: waiting for an earlier event is not failing.

A burst of events on one record, the first of them slow, must all be applied in log
order by a handler with no retries to spare: the later ones wait (``waits.Waiting``)
without spending ``max_retries`` and without becoming dead letters.
"""

from __future__ import annotations

import logging
from typing import Any

import probe_plugin
import pytest
from brokers import broker_url, cleanup, unique_prefix, worker_process
from helpers import dead_letters, effects, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from crm2_core.events import SYSTEM, publish
from crm2_core.events.models import AppliedEvent, EventRecord
from crm2_core.testing import Crm2TestApp, TestDatabase

HANDLER = "probe.record"
# the first is slow (n >= 1000): the others arrive while it runs
BURST = [1000, *range(1, 12)]
METRICS_ON = {"metrics": {"enabled": True}}


async def _publish(app: Crm2TestApp, subject: str, ns: list[int]) -> None:
    """The events in one transaction: the relay hands them over as one batch."""
    async with app.context.session_factory() as session:
        for n in ns:
            publish(session, probe_plugin.ItemCreated(n=n), subject=subject, actor=SYSTEM)
        await session.commit()


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
    waited = [r for r in caplog.records if r.getMessage().startswith(f"handler {HANDLER} waiting")]
    assert waited and all(r.levelno == logging.DEBUG for r in waited)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_waits_are_counted_apart_from_failures_in_the_metrics(crm2_app_factory: Any) -> None:
    probe_plugin.MAX_RETRIES[0] = 0
    probe_plugin.SLOW_SECONDS[0] = 0.4
    app: Crm2TestApp = await crm2_app_factory(
        extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON
    )
    await _publish(app, "burst", BURST[:4])
    await app.settle_events(within=30)

    response = await app.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert _runs(response.text, "applied") == 4
    waiting = _runs(response.text, "waiting")
    assert waiting is not None and waiting >= 1
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
        with worker_process(crm2_database.url, kind, prefix, slow_seconds=0.5, max_retries=0):
            await _publish(app, "burst", BURST)

            async def all_handled() -> bool:
                return await effects(app) == len(BURST) or bool(await dead_letters(app))

            await wait_for(all_handled, within=60)
        assert await dead_letters(app) == []
        assert await _applied_in_order(app, "burst") == BURST
    finally:
        cleanup(kind, prefix)
