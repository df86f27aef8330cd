"""``crm2 tasks seed-load`` / ``crm2 seed load``: a large task table for benchmarks.

Tasks are spread over ``task-agent-NNN@example.com`` agents (created on the
first run, with the password given or a random one), three in four of them
open, due dates within two months either side of now. Rows are inserted in
chunks with a progress bar (PostgreSQL: ``COPY`` through asyncpg's
``copy_records_to_table``, as deals does; SQLite: batched inserts); memory stays
flat at a million tasks. Nothing is published: a data set for reading, not a
history of events.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from rich.progress import Progress
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import User, create_user, utcnow
from crm2_tasks.models import NO_DUE, Task

CHUNK = 5_000
JSON_COLUMNS = ("tags", "checklist", "reminders")
WORDS = ("Call", "E-mail", "Visit", "Quote", "Renew", "Check", "Prepare", "Send", "Review")
OBJECTS = ("the client", "the offer", "the policy", "the claim", "documents", "the invoice")
STATUSES = ("todo", "todo", "in_progress", "waiting", "todo", "in_progress", "done", "done")
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")


def agent_email(number: int) -> str:
    return f"task-agent-{number:03d}@example.com"


async def load_agents(context: Any, count: int, password: str | None) -> list[uuid.UUID]:
    emails = [agent_email(i) for i in range(1, count + 1)]
    secret = password or secrets.token_urlsafe(16)
    async with context.session_factory() as session:
        rows = await session.execute(
            select(col(User.email), col(User.id)).where(col(User.email).in_(emails))
        )
        found = {email: user_id for email, user_id in rows.all()}
        for email in emails:
            if email not in found:
                found[email] = await create_user(
                    context, session, email=email, password=secret, roles=["agent"]
                )
        await session.commit()
    return [found[e] for e in emails]


def _rows(rng: random.Random, agents: Sequence[uuid.UUID], n: int) -> Iterator[dict[str, Any]]:
    now = utcnow()
    for i in range(n):
        agent = agents[i % len(agents)]
        status = rng.choice(STATUSES)
        due = now + timedelta(minutes=rng.randint(-60 * 24 * 60, 60 * 24 * 60))
        title = f"{rng.choice(WORDS)} {rng.choice(OBJECTS)} #{i}"
        created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
        yield {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "title": title,
            "description": "",
            "status": status,
            "is_open": status not in ("done", "cancelled"),
            "priority": rng.choice(PRIORITIES),
            "assignee_id": agent,
            "creator_id": agent,
            "due_at": due if i % 10 else None,
            "due_key": due if i % 10 else NO_DUE,
            "tags": [],
            "checklist": [],
            "reminders": [],
            "completed_at": due if status == "done" else None,
            "search_text": title.lower(),
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }


async def seed_load(
    context: Any, *, tasks: int, agents: int = 200, password: str | None = None
) -> dict[str, int]:
    rng = random.Random(20261203)
    owners = await load_agents(context, agents, password)
    rows = _rows(rng, owners, tasks)
    done = 0
    with Progress(transient=True) as progress:
        bar = progress.add_task("tasks", total=tasks)
        while done < tasks:
            chunk = [next(rows) for _ in range(min(CHUNK, tasks - done))]
            async with context.session_factory() as session:
                await _write(session, chunk)
                await session.commit()
            done += len(chunk)
            progress.update(bar, advance=len(chunk))
    return {"agents": len(owners), "tasks": done}


async def _write(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(insert(Task), rows)
        return
    columns = list(rows[0])
    records = [
        tuple(json.dumps(r[c]) if c in JSON_COLUMNS else r[c] for c in columns) for r in rows
    ]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        Task.__tablename__, records=records, columns=columns
    )
