"""``crm2 backup run|list|verify|restore|prune|keygen``: the operator's console."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError

from crm2_core.api import Crm2Error
from crm2_core.api import run_with_context as _run_with_context

T = TypeVar("T")


LATE_DRILL = (
    "the drill finished after the stale job had marked it failed: not counted "
    "(see GET /api/v1/backup/runs); run it again"
)


def run_with_context(work: Callable[[Any], Awaitable[T]], *, sync_roles: bool = False) -> T:
    """The kit's runner, with a refused operation as one line instead of a traceback."""
    try:
        return _run_with_context(work, sync_roles=sync_roles)
    except Crm2Error as exc:
        raise click.ClickException(f"{exc.title}: {exc.detail or ''}".rstrip(": ")) from None


def _for_the_core(exc: Exception) -> bool:
    """A database that cannot be reached, or has no backup tables yet: the core's own line
    says so (``cannot connect …`` / ``not migrated: run `crm2 migrate` first``), as for
    every other command, instead of ``backup failed:`` and the SQL."""
    if not isinstance(exc, DBAPIError):
        return False
    text = str(exc.orig).lower()
    missing = "no such table" in text or ("relation" in text and "does not exist" in text)
    return exc.statement is None or (missing and "backup_" in exc.statement)


def _progress(label: str) -> Any:
    def show(target: str, phase: str) -> None:
        click.echo(f"  {label} {target}: {phase} …", err=True)

    return show


def register(cli: click.Group) -> None:
    @cli.group("backup")
    def backup() -> None:
        """Backups: run, list, verify (restore drill), restore, prune."""

    @backup.command("run")
    @click.option("--verify/--no-verify", "and_verify", default=False, help="drill the new set too")
    def run(and_verify: bool) -> None:
        """Back up every chosen target into a new encrypted set."""
        from crm2_backup.service.backup import _error_text, run_backup
        from crm2_backup.service.verify import verify

        async def work(context: Any) -> int:
            try:
                row = await run_backup(context, progress=_progress("backup"))
            except Exception as exc:
                if isinstance(exc, Crm2Error) or _for_the_core(exc):
                    raise
                # recorded as a failed set with this cause (and logged with its id): one line
                raise click.ClickException(f"backup failed: {_error_text(exc)}") from None
            assert row is not None
            if row.status != "completed":  # finished after the stale job had failed it
                click.echo(f"set {row.id} {row.status}: {row.error}", err=True)
                return 1
            click.echo(f"set {row.id} completed: {', '.join(row.targets)}, {row.size_bytes} bytes")
            if and_verify:
                drill = await verify(context, row.id, progress=_progress("drill"))
                if drill is None:
                    click.echo(LATE_DRILL, err=True)
                    return 1
                click.echo(_drill_line(drill))
                return 0 if drill.ok else 1
            return 0

        sys.exit(run_with_context(work, sync_roles=False))

    @backup.command("list")
    @click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
    def list_sets(limit: int) -> None:
        """The newest sets, with their status and last drill."""
        from crm2_backup.repository import page_sets
        from crm2_core.api import PageParams

        async def work(context: Any) -> list[Any]:
            async with context.session_factory() as session:
                rows, _ = await page_sets(session, PageParams(limit=limit, cursor=None), None)
                return rows

        for row in run_with_context(work):
            drilled = {None: "not drilled", True: "drill ok", False: "DRILL FAILED"}[row.verify_ok]
            click.echo(
                f"{row.id}  {row.started_at:%Y-%m-%d %H:%M}Z  {row.status:<9}  "
                f"{row.size_bytes:>12}  {','.join(row.targets):<24}  {drilled}"
            )

    @backup.command("verify")
    @click.argument("set_id", required=False, type=click.UUID)
    def verify_set(set_id: uuid.UUID | None) -> None:
        """Restore drill of SET_ID (default: the latest set) into scratch targets."""
        from crm2_backup.service.verify import verify

        async def work(context: Any) -> Any:
            return await verify(context, set_id, progress=_progress("drill"))

        drill = run_with_context(work)
        if drill is None:
            click.echo(LATE_DRILL, err=True)
            sys.exit(1)
        click.echo(_drill_line(drill))
        if not drill.ok:
            sys.exit(1)

    @backup.command("restore")
    @click.argument("set_id", type=click.UUID)
    @click.option("--target", "target_name", required=True, help="postgres, sqlite, redis, …")
    @click.option(
        "--to",
        "to",
        required=True,
        help="where to: a database URL or name, a file, a key prefix, a vhost",
    )
    @click.option("--dry-run", is_flag=True, help="check everything, write nothing")
    def restore(set_id: uuid.UUID, target_name: str, to: str, dry_run: bool) -> None:
        """Restore one target of SET_ID into TO (never over crm2's running database)."""
        from crm2_backup.service.restore import restore as run_restore

        async def work(context: Any) -> dict[str, Any]:
            return await run_restore(context, set_id, target_name, to, dry_run=dry_run)

        report = run_with_context(work)
        click.echo(
            ("dry run: " if dry_run else "restored: ")
            + ", ".join(f"{k}={v}" for k, v in report.items())
        )

    @backup.command("prune")
    def prune() -> None:
        """Apply the retention policy (keep daily/weekly/monthly sets) now."""
        from crm2_backup.service.retention import prune as run_prune

        pruned = run_with_context(run_prune)
        click.echo(f"pruned {len(pruned)} sets" + "".join(f"\n  {i}" for i in pruned))

    @backup.command("keygen")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
    def keygen(out: Path) -> None:
        """Write a new random key file (mode 0600); point CRM2_BACKUP_KEY_FILE at it."""
        from crm2_backup import crypto
        from crm2_backup.service.keys import write_key_file

        if out.exists():
            raise click.ClickException(f"{out} exists: never overwrite a backup key")
        # as ssh-keygen and openssl do: a misspelt folder is refused, not made (the key
        # would sit where nobody looks for it, with a parent folder of the default mode)
        folder = out.parent
        if not folder.exists():
            raise click.ClickException(
                f"the folder {folder} does not exist: create it first (mkdir -m 700 {folder})"
            )
        if not folder.is_dir():
            raise click.ClickException(f"{folder} is not a folder: choose another --out")
        try:
            write_key_file(out, crypto.new_key())
        except FileExistsError:
            raise click.ClickException(f"{out} exists: never overwrite a backup key") from None
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
        click.echo(f"wrote {out}; keep a copy apart from the backups")


def _drill_line(drill: Any) -> str:
    if drill.ok:
        return (
            f"drill {drill.id} of set {drill.set_id}: ok; RTO {drill.rto_seconds:.1f} s, "
            f"RPO {drill.rpo_seconds:.0f} s; "
            + ", ".join(f"{t}: {r.get('drill')}" for t, r in drill.results.items())
        )
    return f"drill {drill.id} of set {drill.set_id}: FAILED: {drill.error}"
