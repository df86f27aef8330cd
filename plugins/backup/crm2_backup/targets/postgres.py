"""PostgreSQL: ``pg_dump -Fc`` of an exported snapshot, restored with ``pg_restore``.

The row counts and checksums the drill compares are read in the same
repeatable-read transaction whose snapshot pg_dump uses (``--snapshot``), so
they describe exactly what the artefact holds. Passwords reach the programs
through ``PGPASSWORD``, never the command line.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from crm2_backup.errors import BadTargetAddress, TargetFailed
from crm2_backup.targets.base import compare, run_program


@dataclass(frozen=True)
class PgAddress:
    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def parse(cls, url: str) -> PgAddress:
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise BadTargetAddress("not a PostgreSQL URL") from exc
        if not parsed.drivername.startswith("postgresql") or not parsed.database:
            raise BadTargetAddress("give a postgresql://user@host:port/database URL")
        return cls(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            database=parsed.database,
        )

    def args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.database]

    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password} if self.password else {}

    async def connect(self) -> Any:
        try:
            return await asyncpg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                database=self.database,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise TargetFailed(f"cannot connect to database {self.database!r}: {exc}") from exc


# never a restore target: the templates every new database is copied from, and the
# maintenance database tools connect to (all empty of tables, so "must be empty" passes)
RESERVED = frozenset({"template0", "template1", "postgres"})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def table_facts(conn: Any, checksums: bool) -> dict[str, Any]:
    """Rows (and a checksum of the sorted rows) per table, and every Alembic version table."""
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    )
    facts: dict[str, Any] = {}
    for record in tables:
        table = record["tablename"]
        if checksums:
            # an order-free sum of per-row hashes: no sort, no aggregate string, one pass
            row = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(sum(('x' || substr(md5(t::text), 1, 15))"
                f"::bit(60)::bigint), 0)::text AS s FROM {_quote(table)} t"
            )
            facts[f"rows.{table}"] = row["n"]
            facts[f"sum.{table}"] = row["s"]
        else:
            facts[f"rows.{table}"] = await conn.fetchval(f"SELECT count(*) FROM {_quote(table)}")
        if table.startswith("alembic_version"):
            versions = await conn.fetch(f"SELECT version_num FROM {_quote(table)}")
            facts[f"alembic.{table}"] = sorted(r["version_num"] for r in versions)
    return facts


class PostgresTarget:
    """crm2's PostgreSQL database."""

    name = "postgres"
    extension = ".pgdump"

    def __init__(
        self,
        database_url: str,
        *,
        pg_dump: str = "pg_dump",
        pg_restore: str = "pg_restore",
        timeout: float = 3600,
        checksums: bool = True,
    ) -> None:
        self.source = PgAddress.parse(database_url)
        self.pg_dump = pg_dump
        self.pg_restore = pg_restore
        self.timeout = timeout
        self.checksums = checksums

    async def dump(self, path: Path) -> Mapping[str, Any]:
        conn = await self.source.connect()
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                facts = await table_facts(conn, self.checksums)
                await run_program(
                    [
                        self.pg_dump,
                        "-Fc",
                        "--snapshot",
                        snapshot,
                        "-f",
                        str(path),
                        *self.source.args(),
                    ],
                    timeout=self.timeout,
                    env=self.source.env(),
                )
        finally:
            await conn.close()
        return facts

    def _address(self, to: str) -> PgAddress:
        if "://" in to:
            return PgAddress.parse(to)
        if not to or len(to) > 63 or not to.replace("_", "").isalnum():
            raise BadTargetAddress("give a database name (letters, digits, _) or a URL")
        return replace(self.source, database=to)

    async def _prepare(self, target: PgAddress, create: bool) -> None:
        """The target database exists and is empty (created if asked, on crm2's own server only:
        the port counts, another port on the same host is another server)."""
        if (target.host, target.port, target.database) == (
            self.source.host,
            self.source.port,
            self.source.database,
        ):
            raise BadTargetAddress("refusing to restore over crm2's own database: name another")
        if target.database in RESERVED:
            raise BadTargetAddress(
                f"refusing to restore into {target.database!r}, a template or the maintenance "
                "database (a template's tables go into every database made after): name a new one"
            )
        same_server = (target.host, target.port) == (self.source.host, self.source.port)
        admin = await self.source.connect() if same_server else None
        try:
            if admin is not None:
                if await admin.fetchval(
                    "SELECT datistemplate FROM pg_database WHERE datname = $1", target.database
                ):
                    raise BadTargetAddress(
                        f"refusing to restore into {target.database!r}, a template database "
                        "(its tables would go into every database made from it): name a new one"
                    )
                exists = await admin.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", target.database
                )
                if not exists:
                    if not create:
                        return
                    try:
                        await admin.execute(f"CREATE DATABASE {_quote(target.database)}")
                    except (
                        asyncpg.DuplicateDatabaseError,
                        asyncpg.UniqueViolationError,  # two CREATE DATABASE at once
                    ) as exc:
                        raise BadTargetAddress(
                            f"database {target.database!r} was created meanwhile (another "
                            "restore into it?): restore into a new one"
                        ) from exc
        finally:
            if admin is not None:
                await admin.close()
        conn = await target.connect()
        try:
            used = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            )
        finally:
            await conn.close()
        if used:
            raise BadTargetAddress(
                f"database {target.database!r} has tables: restore into an empty one"
            )

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        target = self._address(to)
        listing = await run_program([self.pg_restore, "--list", str(path)], timeout=self.timeout)
        entries = sum(1 for line in listing.splitlines() if line and not line.startswith(b";"))
        await self._prepare(target, create=not dry_run)
        if dry_run:
            return {"would_restore_into": target.database, "archive_entries": entries}
        await run_program(
            [
                self.pg_restore,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                *target.args(),
                str(path),
            ],
            timeout=self.timeout,
            env=target.env(),
        )
        return {"restored_into": target.database, "archive_entries": entries}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        scratch = replace(self.source, database=f"crm2_drill_{uuid.uuid4().hex[:16]}")
        try:
            await self.restore(path, scratch.database, False)
            conn = await scratch.connect()
            try:
                found = await table_facts(conn, self.checksums)
            finally:
                await conn.close()
            compare(self.name, facts, found)
            return {"tables": sum(1 for k in found if k.startswith("rows."))}
        finally:
            admin = await self.source.connect()
            try:
                await admin.execute(
                    f"DROP DATABASE IF EXISTS {_quote(scratch.database)} WITH (FORCE)"
                )
            finally:
                await admin.close()
