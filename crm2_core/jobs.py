"""Background jobs a request starts (a large CSV import) and the status row a client polls.

The request adds an ``ImportJob`` row to its own transaction and hands the work to
the application's ``JobRunner`` with :meth:`JobRunner.after_commit`: the work starts
only once that transaction has committed (a rolled-back request starts nothing)
and runs in this process with sessions of its own, writing its progress into the
row as it goes. ``GET …/{job_id}`` reads the row, from any process.

A job does not survive its process: when a process stops mid-job, the row's
``updated_at`` stops moving and a read after ``STALE_AFTER`` reports it ``failed``
("interrupted"); what it committed before stays committed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, Text, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from crm2_core.db import UtcDateTime, new_id, utcnow

if TYPE_CHECKING:
    from crm2_core.context import AppContext

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(minutes=5)
MAX_STORED_ERRORS = 1000


class ImportJob(SQLModel, table=True):
    """One background import: its options, progress, counts and (the first) row errors."""

    __tablename__ = "core_import_job"
    __table_args__ = {"info": {"plugin": "core"}}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(max_length=64, index=True)  # the CsvImport's name, e.g. deals.clients
    owner_id: uuid.UUID = Field(index=True)  # the acting user: who may read it
    # queued | running | done | refused (an import's rows had errors) | failed
    status: str = Field(default="queued", max_length=16)
    phase: str = Field(default="queued", max_length=16)  # queued | checking | writing | done
    dry_run: bool = False
    partial: bool = False
    total: int = 0
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # the header's columns the import does not know (as the synchronous report's)
    ignored_columns: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    applied: bool = False
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )

    def is_stale(self, now: datetime | None = None) -> bool:
        """Queued or running, and not moved for ``STALE_AFTER``: its process is gone."""
        if self.status not in ("queued", "running"):
            return False
        return (now or utcnow()) - self.updated_at > STALE_AFTER


class JobRunner:
    """The application's background tasks: started after a commit, cancelled at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def of(cls, context: AppContext) -> JobRunner:
        """The context's runner (made on first use)."""
        runner = context.find(JobRunner)
        if runner is None:
            runner = cls()
            context.provide(JobRunner, runner)
        return runner

    def start(self, work: Callable[[], Awaitable[None]], name: str = "crm2-job") -> None:
        async def run() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:  # the job records its own failure; this is the last resort
                log.exception("background job %s failed", name)

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)

    def after_commit(
        self, session: AsyncSession, work: Callable[[], Awaitable[None]], name: str = "crm2-job"
    ) -> None:
        """Start ``work`` when ``session``'s transaction commits; never if it rolls back."""
        loop = asyncio.get_running_loop()

        def committed(_session: Any) -> None:
            loop.call_soon(self.start, work, name)

        # after_commit fires for the outermost transaction only; a request that
        # rolls back never fires it, and its session is thrown away with the listener.
        event.listen(session.sync_session, "after_commit", committed, once=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Until no job runs (tests; wrap it in ``asyncio.timeout``)."""
        await asyncio.sleep(0)  # let after-commit starts scheduled with call_soon run
        await self._idle.wait()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
