"""Scheduled work through the core scheduler: due deliveries (retries, quiet hours, the
Telegram webhook's held-back answers) and digests (with the pruning of spent Telegram
update ids and link codes, and of feed entries and deliveries past their retention).

Both are safe to run twice or in two processes at once: deliveries are claimed
by a conditional UPDATE, a digest day likewise. Each step of a job runs whatever
became of the one before: a failure is logged and the next step still runs (a digest
that cannot go must not stop the pruning, nor a failed send the held-back answers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from crm2_hookspecs import ScheduledJob
from crm2_notifications.service import delivery, digest, retention, telegram

log = logging.getLogger(__name__)
Step = Callable[[Any], Awaitable[Any]]


async def _each(context: Any, job: str, steps: list[tuple[str, Step]]) -> None:
    """Run every step; a failed one is logged, and raised after the rest ran."""
    failed: list[str] = []
    for name, step in steps:
        try:
            await step(context)
        except Exception:
            log.exception("notifications: step %s of the %s job failed", name, job)
            failed.append(name)
    if failed:  # the scheduler logs the job as failed too
        raise RuntimeError(f"the {job} job's steps {', '.join(failed)} failed (logged above)")


async def _deliveries(context: Any) -> None:
    await _each(
        context,
        "deliveries",
        [
            ("send_due", delivery.send_due),
            # the bot's answers held back by a pause or limit
            ("flush_replies", telegram.flush_replies),
        ],
    )


async def _digests(context: Any) -> None:
    await _each(
        context,
        "digests",
        [
            ("send_digests", digest.send_digests),
            ("telegram_prune", telegram.prune),  # every few minutes is plenty for day-old rows
            ("retention_prune", retention.prune),  # CRM2_NOTIFICATIONS_RETENTION_DAYS
        ],
    )


def scheduled_jobs(context: Any) -> list[ScheduledJob]:
    interval: int = context.plugin_settings("notifications").delivery_interval_seconds
    return [
        ScheduledJob(name="deliveries", interval_seconds=interval, run=_deliveries),
        ScheduledJob(name="digests", interval_seconds=300, run=_digests),
    ]
