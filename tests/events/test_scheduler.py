"""Scheduled jobs: one run per due interval across every process, whatever ticks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from crm2_core.scheduler import Scheduler
from crm2_hookspecs import PluginManifest, ScheduledJob, hookimpl


class Nightly:
    manifest = PluginManifest(name="nightly", title="Nightly job")

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, context: Any) -> None:
        self.runs += 1
        await asyncio.sleep(0.05)

    @hookimpl
    def crm2_scheduled_jobs(self) -> Sequence[ScheduledJob]:
        return [ScheduledJob(name="sweep", interval_seconds=3600, run=self.run)]


def probe_jobs(*results: list[str]) -> list[str]:
    """The test plugins' jobs among what ticks ran (the core's own jobs run too)."""
    return [name for r in results for name in r if not name.startswith("auth.")]


async def test_due_job_runs_once_across_concurrent_schedulers(crm2_app_factory) -> None:
    plugin = Nightly()
    first = await crm2_app_factory(extra_plugins=(plugin,), scheduler_enabled=False)
    second = await crm2_app_factory(extra_plugins=(plugin,), scheduler_enabled=False)
    schedulers = [Scheduler(first.context), Scheduler(second.context)]
    results = await asyncio.gather(*(s.tick() for s in schedulers), *(s.tick() for s in schedulers))
    assert plugin.runs == 1
    assert probe_jobs(*results) == ["nightly.sweep"]


async def test_job_not_due_again_within_its_interval(crm2_app_factory) -> None:
    plugin = Nightly()
    app = await crm2_app_factory(extra_plugins=(plugin,), scheduler_enabled=False)
    scheduler = Scheduler(app.context)
    assert probe_jobs(await scheduler.tick()) == ["nightly.sweep"]
    assert probe_jobs(await scheduler.tick()) == []
    assert plugin.runs == 1


async def test_failing_job_is_logged_and_does_not_stop_the_scheduler(
    crm2_app_factory, caplog
) -> None:
    class Broken(Nightly):
        manifest = PluginManifest(name="broken", title="Broken job")

        async def run(self, context: Any) -> None:
            raise RuntimeError("boom")

    app = await crm2_app_factory(extra_plugins=(Broken(),), scheduler_enabled=False)
    assert probe_jobs(await Scheduler(app.context).tick()) == ["broken.sweep"]
    assert "scheduled job broken.sweep failed" in caplog.text


async def test_test_apps_start_without_the_scheduler_unless_asked(crm2_app_factory) -> None:
    # A scheduler started with a test's app would run every due job at start-up on the real
    # clock, racing the test's own clock and runs; a test that wants the loop opts in.
    quiet = Nightly()
    await crm2_app_factory(extra_plugins=(quiet,))
    looping = Nightly()
    await crm2_app_factory(extra_plugins=(looping,), scheduler_enabled=True)
    for _ in range(100):
        if looping.runs:
            break
        await asyncio.sleep(0.05)
    assert looping.runs == 1
    assert quiet.runs == 0
