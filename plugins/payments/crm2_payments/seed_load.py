"""``crm2 seed load`` with ``CRM2_SEED_PAYMENTS=<n>``: a large payment table for benchmarks.

Payments are spread over the active users (agents first), in EUR, JPY and KWD,
due within a year either side of today, one in three paid; inserted in chunks
with a progress bar (batched inserts on both databases). Nothing is published
and no ledger rows are written: a data set for reading and exporting, not a
history of events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from rich.progress import Progress
from sqlalchemy import column, insert, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import User, new_id, utcnow
from crm2_payments.models import Payment

CHUNK = 5_000
_user_role = table("auth_user_role", column("user_id"), column("role_name"))
CURRENCIES = ("EUR", "EUR", "EUR", "JPY", "KWD")


async def owners(session: AsyncSession) -> list[uuid.UUID]:
    agents = select(_user_role.c.user_id).where(_user_role.c.role_name == "agent")
    found = [uuid.UUID(str(v)) for v in (await session.execute(agents)).scalars()]
    if not found:
        active = select(col(User.id)).where(col(User.is_active).is_(True))
        found = list((await session.execute(active)).scalars())
    return found


def rows(rng: random.Random, owner_ids: Sequence[uuid.UUID], n: int) -> Iterator[dict[str, Any]]:
    now = utcnow()
    today = now.date()
    for i in range(n):
        amount = rng.randrange(1_000, 500_000)
        paid = amount if i % 3 == 0 else 0
        yield {
            "id": new_id(), "direction": "incoming", "amount_minor": amount,
            "currency": CURRENCIES[i % len(CURRENCIES)], "paid_minor": paid,
            "refunded_minor": 0, "status": "paid" if paid else "planned",
            "due_date": today + timedelta(days=rng.randrange(-365, 365)),
            "paid_at": now if paid else None, "method": "bank_transfer" if paid else "",
            "payer": f"Client {i % 9973}", "payee": "", "reference": f"LOAD-{i}", "note": "",
            "insurer": f"Insurer {i % 7}", "product": "", "provider": "load",
            "owner_id": owner_ids[i % len(owner_ids)],
            "created_at": now - timedelta(seconds=i), "updated_at": now - timedelta(seconds=i),
            "version": 1,
        }  # fmt: skip


async def seed_load(context: Any, *, payments: int) -> dict[str, int]:
    rng = random.Random(7)
    async with context.session_factory() as session:
        owner_ids = await owners(session)
    if not owner_ids:
        return {"payments": 0}
    written = 0
    batch: list[dict[str, Any]] = []
    with Progress() as progress:
        bar = progress.add_task("payments", total=payments)
        for row in rows(rng, owner_ids, payments):
            batch.append(row)
            if len(batch) == CHUNK:
                written += await _write(context, batch)
                progress.update(bar, completed=written)
                batch = []
        if batch:
            written += await _write(context, batch)
            progress.update(bar, completed=written)
    return {"payments": written}


async def _write(context: Any, batch: list[dict[str, Any]]) -> int:
    # the table's own INSERT: one executemany per chunk. The ORM's bulk insert splits a
    # batch wherever the set of None values changes (paid_at, one row in three) and sent
    # ~3,300 statements per 5,000 rows (the 50k query-plans test took minutes under load)
    table: Any = getattr(Payment, "__table__")  # noqa: B009 - SQLModel does not type it
    async with context.session_factory() as session:
        await session.execute(insert(table), batch)
        await session.commit()
    return len(batch)
