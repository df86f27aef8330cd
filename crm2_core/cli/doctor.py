"""``crm2 doctor``: a table of findings and an exit code (``--json`` for scripts)."""

from __future__ import annotations

import json
import sys

import click

from crm2_core.cli.main import cli, load_context, run_async

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the findings as one JSON object")
def doctor(as_json: bool) -> None:
    """Check the database, migrations, broker, Redis, queues, outbox, clock and secrets.

    Exits 0 when nothing failed (warnings allowed), 1 otherwise.
    """
    from crm2_core.observability import doctor as checks

    context = load_context()

    async def run() -> list[checks.Finding]:
        try:
            return await checks.diagnose(context)
        finally:
            await context.aclose()

    findings = run_async(run())
    if as_json:
        click.echo(json.dumps(checks.as_json(findings), indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("check", "status", "detail", "ms")
        for finding in findings:
            style = STYLE[finding.status]
            table.add_row(
                finding.check,
                f"[{style}]{finding.status}[/{style}]",
                finding.detail,
                f"{finding.ms:.0f}",
            )
        Console(width=160).print(table)
    sys.exit(checks.exit_code(findings))
