"""Runs the plugins' ``ScheduledJob``s: every API (and worker) process may run the
scheduler; a conditional UPDATE on ``core_job_run`` lets exactly one of them
claim each due run, on SQLite and PostgreSQL alike. Jobs must still be safe to
run twice (a process can die mid-run; the next claim runs it again)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Column, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col

from crm2_core.db import UtcDateTime, utcnow
from crm2_core.observability.metrics import record_job
from crm2_hookspecs import ScheduledJob

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)
NEVER = datetime(1970, 1, 1, tzinfo=utcnow().tzinfo)


class JobRun(SQLModel, table=True):
    """When each scheduled job last started."""

    __tablename__ = "core_job_run"
    __table_args__ = {"info": {"plugin": "core"}}

    name: str = Field(primary_key=True, max_length=100)
    last_started_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


def collect_jobs(context: AppContext) -> dict[str, ScheduledJob]:
    jobs: dict[str, ScheduledJob] = {}
    for plugin, job in context.plugins.collect("crm2_scheduled_jobs", context=context):
        jobs[f"{plugin}.{job.name}"] = job
    return jobs


async def claim(context: AppContext, name: str, interval_seconds: int) -> bool:
    """Take this run of ``name`` if it is due and nobody took it first."""
    now = utcnow()
    async with context.session_factory() as session:
        if await session.get(JobRun, name) is None:
            session.add(JobRun(name=name, last_started_at=NEVER))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
        result = await session.execute(
            update(JobRun)
            .where(
                col(JobRun.name) == name,
                col(JobRun.last_started_at) <= now - timedelta(seconds=interval_seconds),
            )
            .values(last_started_at=now)
        )
        await session.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def run_job(context: AppContext, name: str, job: ScheduledJob) -> None:
    started = utcnow()
    try:
        await asyncio.wait_for(job.run(context), timeout=max(job.interval_seconds, 60))
    except Exception:
        log.exception("scheduled job %s failed", name)
        record_job(context, name, ok=False)
        return
    record_job(context, name, ok=True)
    log.info("scheduled job %s done in %.1fs", name, (utcnow() - started).total_seconds())


class Scheduler:
    def __init__(self, context: AppContext, check_seconds: float = 30.0) -> None:
        self.context = context
        self.jobs = collect_jobs(context)
        self.check_seconds = check_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        if self.jobs:
            self._task = asyncio.create_task(self._loop(), name="crm2-scheduler")

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Let a running job finish (up to ``grace_seconds``), then stop."""
        if self._task is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait({self._task}, timeout=grace_seconds)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def tick(self) -> list[str]:
        """Run every due job once; return the names that ran here."""
        ran = []
        for name, job in self.jobs.items():
            try:
                due = await claim(self.context, name, job.interval_seconds)
            except Exception:
                log.exception("scheduler could not check %s", name)
                continue
            if due:
                await run_job(self.context, name, job)
                ran.append(name)
        return ran

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.check_seconds)
