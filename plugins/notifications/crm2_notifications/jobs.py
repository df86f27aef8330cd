"""Scheduled work through the core scheduler: due deliveries (retries, quiet hours, the
Telegram webhook's held-back answers) and digests (with the pruning of spent Telegram
update ids and link codes, and of feed entries and deliveries past their retention).

Both are safe to run twice or in two processes at once: deliveries are claimed
by a conditional UPDATE, a digest day likewise.
"""

from __future__ import annotations

from typing import Any

from crm2_hookspecs import ScheduledJob
from crm2_notifications.service import delivery, digest, retention, telegram


async def _deliveries(context: Any) -> None:
    await delivery.send_due(context)
    await telegram.flush_replies(context)  # the bot's answers held back by a pause or limit


async def _digests(context: Any) -> None:
    await digest.send_digests(context)
    await telegram.prune(context)  # every few minutes is plenty for day-old rows
    await retention.prune(context)  # CRM2_NOTIFICATIONS_RETENTION_DAYS


def scheduled_jobs(context: Any) -> list[ScheduledJob]:
    interval: int = context.plugin_settings("notifications").delivery_interval_seconds
    return [
        ScheduledJob(name="deliveries", interval_seconds=interval, run=_deliveries),
        ScheduledJob(name="digests", interval_seconds=300, run=_digests),
    ]
