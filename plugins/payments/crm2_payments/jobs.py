"""The overdue job, through the core scheduler (daily by default; safe to run twice)."""

from __future__ import annotations

from typing import Any

from crm2_hookspecs import ScheduledJob
from crm2_payments.service.overdue import mark_overdue


async def _scheduled(context: Any) -> None:
    await mark_overdue(context)


def scheduled_jobs(context: Any) -> list[ScheduledJob]:
    interval: int = context.plugin_settings("payments").overdue_interval_seconds
    return [ScheduledJob(name="overdue", interval_seconds=interval, run=_scheduled)]
