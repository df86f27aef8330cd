"""``crm2 seed load`` / ``crm2 deals seed-load``: large data sets for benchmarks, fast.

PostgreSQL takes the rows through ``COPY`` (asyncpg ``copy_records_to_table``);
SQLite through batched ``executemany``. Rows are generated in chunks, so memory
stays flat at a million deals. Owners are ten ``load-agent-NN@example.com``
users (created on the first run) unless given.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.progress import Progress
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import AppContext, create_user, fold_text
from crm2_deals.models import Client, ClientEmail, Deal, LostReason, Stage
from crm2_deals.seed_data import FIRST_NAMES, LAST_NAMES, PRODUCTS, SOURCES

CHUNK = 10_000
LOAD_AGENTS = 10


async def load_owners(
    context: AppContext, session: AsyncSession, count: int = LOAD_AGENTS
) -> list[uuid.UUID]:
    """The ``load-agent-NN`` users, created when missing (one random password, never shown)."""
    from crm2_core.api import User

    emails = [f"load-agent-{i:02d}@example.com" for i in range(1, count + 1)]
    rows = await session.execute(
        select(col(User.email), col(User.id)).where(col(User.email).in_(emails))
    )
    found = {email: user_id for email, user_id in rows.all()}
    password = secrets.token_urlsafe(16)
    for email in emails:
        if email not in found:
            found[email] = await create_user(
                context,
                session,
                email=email,
                password=password,
                full_name="Load agent",
                roles=["agent"],
            )
    await session.commit()
    return [found[e] for e in emails]


def _client_rows(
    rng: random.Random, owners: Sequence[uuid.UUID], n: int, tag: str
) -> Iterator[dict[str, Any]]:
    now = datetime.now(UTC)
    for i in range(n):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {tag}{i}"
        email = f"c{i}.{tag}@load.example"
        phone = f"+49 30 {rng.randint(1_000_000, 9_999_999)}"
        at = now - timedelta(seconds=rng.randint(0, 730 * 86_400))
        yield {
            "id": uuid.uuid4(), "kind": "person", "name": name, "emails": [email],
            "phones": [phone], "tax_id": None, "address": "", "tags": ["load"],
            "owner_id": rng.choice(owners), "archived": False,
            "search_text": fold_text(f"{name} {email} {phone}"),
            "created_at": at, "updated_at": at, "version": 1,
        }  # fmt: skip


def _deal_rows(
    rng: random.Random,
    clients: Sequence[tuple[uuid.UUID, uuid.UUID]],
    stages: Sequence[Stage],
    reasons: Sequence[LostReason],
    n: int,
) -> Iterator[dict[str, Any]]:
    now = datetime.now(UTC)
    for i in range(n):
        client_id, owner_id = rng.choice(clients)
        stage = rng.choice(stages)
        product = rng.choice(PRODUCTS)
        created = now - timedelta(seconds=rng.randint(86_400, 730 * 86_400))
        updated = created + (now - created) * rng.random()
        reason = rng.choice(reasons) if stage.kind == "lost" and reasons else None
        yield {
            "id": uuid.uuid4(), "title": f"{product[0]} #{i}", "client_id": client_id,
            "pipeline_id": stage.pipeline_id, "stage_id": stage.id, "status": stage.kind,
            "value_minor": rng.randint(product[2] * 50, product[2] * 300), "currency": "EUR",
            "owner_id": owner_id, "source": rng.choice(SOURCES),
            "expected_close_date": (created + timedelta(days=rng.randint(10, 180))).date(),
            "lost_reason_id": reason.id if reason else None,
            "lost_reason": reason.name if reason else None,
            "closed_at": updated if stage.kind != "open" else None,
            "stage_entered_at": updated, "created_at": created, "updated_at": updated,
            "version": 1,
        }  # fmt: skip


class _Writer:
    """Inserts chunks of row dicts: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    async def write(self, model: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if not self.postgres:
            await self.session.execute(insert(model), rows)
            return
        table = model.__table__
        columns = [c.name for c in table.columns]
        json_columns = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
        records = [
            tuple(json.dumps(r[c]) if c in json_columns else r[c] for c in columns) for r in rows
        ]
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=records, columns=columns
        )


async def _chunked(
    rows: Iterator[dict[str, Any]],
    write: Callable[[list[dict[str, Any]]], Any],
    advance: Callable[[int], None],
) -> None:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            await write(chunk)
            advance(len(chunk))
            chunk = []
    if chunk:
        await write(chunk)
        advance(len(chunk))


async def seed_load(
    context: AppContext,
    *,
    clients: int,
    deals: int,
    owners: Sequence[uuid.UUID] | None = None,
    progress: bool = True,
    seed: int | None = None,
) -> dict[str, int]:
    """Insert ``clients`` clients (with their e-mails) and ``deals`` deals over every stage."""
    rng = random.Random(seed)
    tag = secrets.token_hex(3)  # keeps e-mails unique across repeated loads
    async with context.session_factory() as session:
        owners = list(owners) if owners else await load_owners(context, session)
        stages = list((await session.execute(select(Stage))).scalars())
        reasons = list((await session.execute(select(LostReason))).scalars())
        if not stages:
            raise RuntimeError("no pipelines: run `crm2 migrate` first")
        writer = _Writer(session)
        client_keys: list[tuple[uuid.UUID, uuid.UUID]] = []

        async def write_clients(chunk: list[dict[str, Any]]) -> None:
            await writer.write(Client, chunk)
            emails = [{"client_id": r["id"], "email": r["emails"][0]} for r in chunk]
            await writer.write(ClientEmail, emails)
            client_keys.extend((r["id"], r["owner_id"]) for r in chunk)

        with Progress(disable=not progress, transient=False) as bar:
            task = bar.add_task("clients", total=clients)
            await _chunked(
                _client_rows(rng, owners, clients, tag),
                write_clients,
                lambda n: bar.advance(task, n),
            )
            task = bar.add_task("deals", total=deals)
            await _chunked(
                _deal_rows(rng, client_keys, stages, reasons, deals),
                lambda chunk: writer.write(Deal, chunk),
                lambda n: bar.advance(task, n),
            )
        await session.commit()
    return {"clients": clients, "deals": deals}
