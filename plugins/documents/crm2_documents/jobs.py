"""Scheduled work through the core scheduler: the transfer queue, the purge, the orphan sweep."""

from __future__ import annotations

from typing import Any

from crm2_hookspecs import ScheduledJob


async def _transfers(context: Any) -> None:
    from crm2_documents.service.transfers import run_transfers

    await run_transfers(context)


async def _purge(context: Any) -> None:
    from crm2_documents.service.retention import purge_deleted

    await purge_deleted(context)


async def _orphans(context: Any) -> None:
    from crm2_documents.service.orphans import sweep_orphans

    await sweep_orphans(context)


def scheduled_jobs(context: Any) -> list[ScheduledJob]:
    settings = context.plugin_settings("documents")
    return [
        ScheduledJob(
            name="transfers", interval_seconds=settings.transfer_interval_seconds, run=_transfers
        ),
        ScheduledJob(name="purge", interval_seconds=settings.purge_interval_seconds, run=_purge),
        ScheduledJob(
            name="orphans",
            interval_seconds=settings.orphan_sweep_interval_seconds,
            run=_orphans,
        ),
    ]
