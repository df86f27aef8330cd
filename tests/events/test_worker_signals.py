"""How ``crm2 worker`` answers signals: SIGTERM stops it at any point of its life, the
boot included; SIGUSR1 prints every thread's stack and leaves it running."""

from __future__ import annotations

import signal
import tempfile
import time

import probe_plugin
import pytest
from brokers import broker_url, cleanup, unique_prefix, worker_process
from helpers import wait_for
from sqlalchemy import text

from crm2_core.events.relay import hold_lock
from crm2_core.testing import TestDatabase, stop_process

WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def test_a_worker_stops_on_sigterm_while_its_boot_waits(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    """The boot's catch-up waits for the relay lock, which the test holds: a SIGTERM
    meanwhile still ends the worker, at once and cleanly (it used to wait for the boot)."""
    if crm2_database.backend != "postgresql":
        pytest.skip("the relay lock: PostgreSQL only (SQLite's writers are serialised)")
    prefix = unique_prefix()
    try:
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url("amqp"), broker_queue_prefix=prefix
        )
        async with app.context.session_factory() as holder:
            await hold_lock(holder)
            async with worker_process(crm2_database.url, "amqp", prefix) as worker:

                async def boot_waits() -> bool:
                    async with app.context.session_factory() as session:
                        return bool((await session.execute(WAITING_FOR_A_LOCK)).scalar())

                await wait_for(boot_waits, within=30)
                started = time.monotonic()
                assert await stop_process(worker, within=10)
                assert worker.returncode == 0
                assert time.monotonic() - started < 5
    finally:
        cleanup("amqp", prefix)


async def test_sigusr1_prints_every_threads_stack_and_the_worker_goes_on(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    prefix = unique_prefix()
    try:
        await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url("amqp"), broker_queue_prefix=prefix
        )
        with tempfile.TemporaryFile() as log:

            def logged() -> str:
                log.seek(0)
                return log.read().decode(errors="replace")

            async with worker_process(crm2_database.url, "amqp", prefix, stderr=log) as worker:

                async def ready() -> bool:
                    return "crm2 worker ready" in logged()

                await wait_for(ready, within=30)
                worker.send_signal(signal.SIGUSR1)

                async def dumped() -> bool:
                    return "Current thread" in logged()

                await wait_for(dumped, within=10)
                assert worker.returncode is None
            assert worker.returncode == 0, logged()
            stacks = logged()
        assert "in _wait_until" in stacks  # the main thread, waiting for a stop
        assert stacks.count("Thread 0x") >= 3  # the main one, dramatiq's loop and workers
    finally:
        cleanup("amqp", prefix)
