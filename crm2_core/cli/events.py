"""``crm2 worker`` and ``crm2 events …``."""

from __future__ import annotations

import json
import uuid

import click

from crm2_core.cli.commands import _with_context
from crm2_core.cli.main import cli, fail, load_context, run_async
from crm2_core.cli.output import console
from crm2_core.errors import ConfigurationError


@cli.command()
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    help="consume only this plugin's queue (repeatable); default: every plugin's",
)
def worker(processes: int, threads: int, plugins: tuple[str, ...]) -> None:
    """Run the enabled plugins' event handlers from the broker (amqp:// or redis://)."""
    from crm2_core.events.worker import run_processes, run_worker, worker_queues

    if processes > 1:
        context = load_context()  # fail here, once, on a bad configuration
        try:
            worker_queues(context, plugins)
        except ConfigurationError as exc:
            fail(str(exc))
        run_processes(processes, threads, plugins)
        return
    try:
        run_worker(load_context(), threads, plugins=plugins)
    except ConfigurationError as exc:
        fail(str(exc))


@cli.group()
def events() -> None:
    """The event log: schemas and dead letters."""


@events.command()
def schema() -> None:
    """Print the AsyncAPI 3.0 document of every enabled event type and SSE channel."""
    from crm2_core.events.asyncapi import asyncapi_document

    context = load_context()
    click.echo(json.dumps(asyncapi_document(context), indent=2))
    run_async(context.engine.dispose())


def _letter_id(text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"{text!r} is not a dead-letter id")


@events.command("dead-letters")
@click.option(
    "--retry", "retry_id", default=None, help="replay one dead letter (and those held behind it)"
)
@click.option(
    "--all",
    "retry_all",
    is_flag=True,
    help="replay every dead letter not yet replayed, in log order",
)
@click.option(
    "--skip",
    "skip_id",
    default=None,
    help="give one dead letter up (never applied); replays those held behind it",
)
def dead_letters(retry_id: str | None, retry_all: bool, skip_id: str | None) -> None:
    """List dead letters with their error, replay them (--retry ID | --all) or give one
    up (--skip ID)."""
    from crm2_core.events import dead_letters as letters

    if sum((retry_id is not None, retry_all, skip_id is not None)) > 1:
        fail("give one of --retry, --all, --skip")
    letter_id = _letter_id(retry_id)
    skipped_id = _letter_id(skip_id)
    context = load_context()
    if skipped_id is not None:
        released = run_async(_with_context(context, letters.skip(context, skipped_id)))
        if released is None:
            fail(f"no dead letter {skip_id} waiting (listed by `crm2 events dead-letters`)")
        click.echo(f"skipped dead letter {skip_id}; replayed {released} held behind it")
        return
    if retry_id or retry_all:
        count = run_async(_with_context(context, letters.replay(context, letter_id)))
        console().print(f"replayed {count} dead letter(s)")
        return
    rows = run_async(_with_context(context, letters.pending(context)))
    # One block per letter rather than a table: ids must stay whole to be copied
    # into --retry or --skip, and errors are long. In log order: replay in this order.
    for letter in rows:
        click.echo(
            f"{letter.id}  {letter.handler}  event {letter.event_id}  "
            f"attempts {letter.attempts}  {letter.created_at.isoformat(timespec='seconds')}"
        )
        click.echo(f"    {letter.error}")
    click.echo(f"{len(rows)} dead letter(s) waiting")


@cli.group()
def jobs() -> None:
    """The plugins' scheduled jobs."""


@jobs.command("list")
def jobs_list() -> None:
    """Every scheduled job and its interval."""
    from crm2_core.scheduler import collect_jobs

    context = load_context()
    from rich.table import Table

    table = Table("job", "every (s)")
    for name, job in collect_jobs(context).items():
        table.add_row(name, str(job.interval_seconds))
    console().print(table)
    run_async(context.engine.dispose())


@jobs.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """Run the job NAME (``<plugin>.<job>``) now, whether or not it is due."""
    from crm2_core.scheduler import collect_jobs, run_job

    context = load_context()
    found = collect_jobs(context)
    if name not in found:
        fail(f"no job {name!r}; `crm2 jobs list` shows them")
    run_async(_with_context(context, run_job(context, name, found[name])))
    console().print(f"ran {name}")
