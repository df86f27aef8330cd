"""``crm2 deals …``: the policy job on demand and large data sets."""

from __future__ import annotations

from datetime import datetime

import click

from crm2_core.api import AppContext, run_with_context


def register(cli: click.Group) -> None:
    @cli.group("deals")
    def deals() -> None:
        """Deals: the policy job and benchmark data sets."""

    @deals.command("run-jobs")
    @click.option(
        "--today",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="run as of this day (YYYY-MM-DD); default today (UTC)",
    )
    def run_jobs(today: datetime | None) -> None:
        """Expire ended policies and announce renewals due (safe to run again)."""
        from crm2_deals.jobs import run_policy_maintenance

        day = today.date() if today else None
        result = run_with_context(lambda context: run_policy_maintenance(context, day))
        click.echo(f"policies expired: {result['expired']}, renewal_due: {result['renewal_due']}")

    @deals.command("seed-load")
    @click.option("--clients", type=click.IntRange(1), default=100_000, show_default=True)
    @click.option(
        "--deals", "deal_count", type=click.IntRange(0), default=1_000_000, show_default=True
    )
    def seed_load(clients: int, deal_count: int) -> None:
        """Generate a large data set fast (COPY on PostgreSQL), with a progress bar."""
        from crm2_deals.seed_load import seed_load as load

        async def work(context: AppContext) -> dict[str, int]:
            return await load(context, clients=clients, deals=deal_count)

        # sync_roles: the built-in roles, on a database never served
        result = run_with_context(work, sync_roles=True)
        click.echo(f"loaded {result['clients']} clients and {result['deals']} deals")
