"""``crm2 broker setup``: RabbitMQ's vhost, permissions, queues and policies from the settings."""

from __future__ import annotations

import json
import sys

import click

from crm2_core.cli.main import cli, fail, load_context, run_async
from crm2_core.errors import ConfigurationError

STYLE = {
    "created": "green",
    "updated": "yellow",
    "removed": "yellow",
    "unchanged": "dim",
    "failed": "bold red",
}


@cli.group()
def broker() -> None:
    """The message broker (RabbitMQ)."""


@broker.command()
@click.option("--dry-run", is_flag=True, help="say what would change, change nothing")
@click.option("--json", "as_json", is_flag=True, help="print the steps as JSON")
def setup(dry_run: bool, as_json: bool) -> None:
    """Declare the vhost, permissions, one queue per enabled plugin and the policies.

    Idempotent: what already matches is left alone and reported as unchanged.
    Exits 1 when a step failed (say, a queue declared with other arguments).
    """
    from crm2_core.events import broker_setup

    context = load_context()
    try:
        plugins = context.events.handlers.plugins
        topology = broker_setup.desired_topology(context.settings, plugins)
        admin = broker_setup.broker_admin(context.settings)
    except ConfigurationError as exc:
        fail(str(exc))
    finally:
        run_async(context.aclose())
    report = broker_setup.setup_broker(context.settings, topology, admin, apply=not dry_run)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "changes": report.as_json()}, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("step", "name", "action", "detail", title=f"vhost {topology.vhost}")
        for change in report.changes:
            style = STYLE[change.action]
            action = (
                change.action
                if not dry_run or change.action == "unchanged"
                else (f"would be {change.action}")
            )
            table.add_row(change.kind, change.name, f"[{style}]{action}[/{style}]", change.detail)
        Console(width=160).print(table)
    sys.exit(1 if report.failed else 0)
