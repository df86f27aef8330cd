"""``crm2 tasks …``: the timers job on demand and benchmark data sets."""

from __future__ import annotations

from typing import Any

import click

from crm2_core.api import run_with_context


def register(cli: click.Group) -> None:
    @cli.group("tasks")
    def tasks() -> None:
        """Tasks: the reminder / SLA job and benchmark data sets."""

    @tasks.command("run-timers")
    def run_timers() -> None:
        """Fire due reminders, SLA warnings and breaches now (safe to run again)."""
        from crm2_tasks.jobs import run_timers as run

        result = run_with_context(run)
        click.echo(", ".join(f"{k}: {v}" for k, v in result.items()))

    @tasks.command("seed-load")
    @click.option("--tasks", "count", type=click.IntRange(0), default=1_000_000, show_default=True)
    @click.option("--agents", type=click.IntRange(1, 999), default=200, show_default=True)
    @click.option("--password", default=None, help="the load agents' password (default: random)")
    def seed_load(count: int, agents: int, password: str | None) -> None:
        """Generate a large task table fast, with a progress bar."""
        from crm2_tasks.seed_load import seed_load as load

        async def work(context: Any) -> dict[str, int]:
            return await load(context, tasks=count, agents=agents, password=password)

        result = run_with_context(work, sync_roles=True)
        click.echo(f"loaded {result['tasks']} tasks for {result['agents']} agents")
