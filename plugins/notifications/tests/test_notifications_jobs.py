"""The scheduled jobs: each step of one runs whatever became of the step before."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from notifications_kit import Notifications

from crm2_core.api import utcnow


async def test_each_step_of_a_job_runs_when_one_before_it_fails(
    notifications: Notifications, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A digest that raises (Redis down, a bug) must not stop the pruning of the same
    ``digests`` run, nor a failed send the held-back answers of the ``deliveries`` run;
    each failure is logged and the job still reported failed."""
    from crm2_notifications import jobs
    from crm2_notifications.models import TelegramUpdate
    from crm2_notifications.service import delivery, digest, retention, telegram

    async with notifications.context.session_factory() as session:
        session.add(TelegramUpdate(update_id=1, received_at=utcnow() - timedelta(days=3)))
        await session.commit()
    ran: list[str] = []

    async def broken(context: Any) -> None:
        raise RuntimeError("the digest broke")

    def recorded(name: str, step: Any) -> Any:
        async def run(context: Any) -> Any:
            ran.append(name)
            return await step(context)

        return run

    monkeypatch.setattr(digest, "send_digests", broken)
    monkeypatch.setattr(retention, "prune", recorded("retention", retention.prune))
    monkeypatch.setattr(delivery, "send_due", broken)
    monkeypatch.setattr(telegram, "flush_replies", recorded("flush", telegram.flush_replies))
    caplog.set_level(logging.ERROR, logger="crm2_notifications")
    by_name = {j.name: j for j in jobs.scheduled_jobs(notifications.context)}

    with pytest.raises(RuntimeError, match="send_digests"):
        await by_name["digests"].run(notifications.context)
    assert await notifications.rows(TelegramUpdate) == []  # pruned all the same
    with pytest.raises(RuntimeError, match="send_due"):
        await by_name["deliveries"].run(notifications.context)
    assert ran == ["retention", "flush"]
    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failed) == 2 and all("failed" in m for m in failed)
