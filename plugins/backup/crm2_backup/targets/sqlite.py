"""SQLite: the online backup API (a consistent copy while crm2 runs), restored to a file."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from crm2_backup.errors import BadTargetAddress, TargetFailed
from crm2_backup.targets.base import compare, write_new_file


def sqlite_path(database_url: str) -> Path:
    """The file of ``sqlite+aiosqlite:///path``."""
    _, _, rest = database_url.partition(":///")
    if not rest or rest.startswith(":memory:"):
        raise BadTargetAddress(f"{database_url.split('?')[0]!r} is not a SQLite file")
    return Path(rest.split("?", 1)[0])


def table_facts(path: Path, checksums: bool) -> dict[str, Any]:
    """Row count (and an order-free checksum of the rows) of every table; Alembic versions."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        facts: dict[str, Any] = {}
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            count = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
            facts[f"rows.{table}"] = count
            if checksums:  # an order-free sum of per-row hashes, one row in memory at a time
                total = 0
                for row in conn.execute(f"SELECT * FROM {quoted}"):
                    digest = hashlib.sha256(repr(row).encode()).digest()
                    total = (total + int.from_bytes(digest[:16], "big")) % (1 << 128)
                facts[f"sum.{table}"] = f"{total:032x}"
            if table.startswith("alembic_version"):
                versions = sorted(r[0] for r in conn.execute(f"SELECT version_num FROM {quoted}"))
                facts[f"alembic.{table}"] = versions
        return facts


def _copy(source: Path, target: Path) -> None:
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def _integrity(path: Path) -> str:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


class SqliteTarget:
    """crm2's SQLite database file."""

    name = "sqlite"
    extension = ".sqlite3"

    def __init__(self, database_url: str, *, checksums: bool = True) -> None:
        self.source = sqlite_path(database_url)
        self.checksums = checksums

    async def dump(self, path: Path) -> Mapping[str, Any]:
        if not self.source.exists():
            raise TargetFailed(f"the SQLite database {self.source} does not exist")
        await asyncio.to_thread(_copy, self.source, path)
        # facts of the copy itself: the copy is the snapshot
        return await asyncio.to_thread(table_facts, path, self.checksums)

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        target = sqlite_path(to) if "://" in to else Path(to)
        if target.resolve() == self.source.resolve():
            raise BadTargetAddress("restore into the running database file: stop crm2 and copy it")
        if target.exists() and target.stat().st_size > 0:
            raise BadTargetAddress(f"{target} exists: restore into a new file")
        if not target.parent.is_dir():
            raise BadTargetAddress(f"no directory {target.parent}: create it first")
        check = await asyncio.to_thread(_integrity, path)
        if check != "ok":
            raise TargetFailed(f"the artefact fails PRAGMA integrity_check: {check}")
        if dry_run:
            return {"would_write": str(target), "integrity": check}
        await asyncio.to_thread(write_new_file, target, lambda into: _copy(path, into))
        return {"written": str(target), "integrity": check}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        scratch = path.with_name(f"drill-{uuid.uuid4().hex}.sqlite3")
        try:
            await self.restore(path, str(scratch), False)
            found = await asyncio.to_thread(table_facts, scratch, self.checksums)
            compare(self.name, facts, found)
            return {"tables": sum(1 for k in found if k.startswith("rows."))}
        finally:
            scratch.unlink(missing_ok=True)
