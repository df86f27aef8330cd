"""The ``events`` default plugin: the event bus (outbox relay, broker, handlers), the scheduler
and the runner of background jobs (``crm2_core.jobs``).

Its hooks run around every other plugin's: the bus is built after all plugins
are configured (``trylast``), since it collects their event types and handlers;
it starts after their startups and stops before their shutdowns, as a server's
background work should.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm2_core.context import EVENTS, SCHEDULER, AppContext
from crm2_core.events.bus import build_bus
from crm2_core.events.models import MODELS
from crm2_core.jobs import ImportJob, JobRunner
from crm2_core.scheduler import JobRun, Scheduler
from crm2_hookspecs import PluginManifest, hookimpl

manifest = PluginManifest(
    name="events",
    title="Events",
    depends=("core",),
    description="The outbox, its relay to the broker, handlers with retries, and the scheduler.",
)


@hookimpl
def crm2_models() -> Sequence[type]:
    # The tables are the core's (its migrations create them: tagged plugin "core").
    return [*MODELS, JobRun, ImportJob]


@hookimpl(trylast=True)
def crm2_configure(context: AppContext) -> None:
    context.provide(EVENTS, build_bus(context))
    context.provide(SCHEDULER, Scheduler(context))
    context.provide(JobRunner, JobRunner())


@hookimpl(trylast=True)
async def crm2_startup(context: AppContext) -> None:
    await context.events.start()
    if context.settings.scheduler_enabled:
        await context.scheduler.start()


@hookimpl(tryfirst=True)
async def crm2_shutdown(context: AppContext) -> None:
    await context.scheduler.close()
    await context.get(JobRunner).aclose()
    await context.events.close()
