"""``crm2 seed load`` with ``CRM2_SEED_NOTIFICATIONS=<n>``: big feeds and a delivery log.

``n`` feed entries spread over the active users (agents first), created over the last
90 days, two in three read; one in four with an e-mail delivery (delivered, one in
ten of those dead after its attempts) and its log line. Inserted in chunks with a
progress bar; nothing is published: a data set for reading (feeds, unread counts,
the delivery log), not a history of events. Deterministic in shape (a fixed random seed);
a second run adds as many again.
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

from crm2_core.api import new_id, utcnow
from crm2_notifications.models import Delivery, DeliveryAttempt, Notification

CHUNK = 5_000
_user = table("auth_user", column("id"), column("is_active"))
_user_role = table("auth_user_role", column("user_id"), column("role_name"))
KINDS = (
    ("deals.deal.won", "Deal won: Load deal {i}"),
    ("tasks.task.due", "Task due: load task {i}"),
    ("payments.payment.received", "Payment received: LOAD-{i}"),
)


async def recipients(session: AsyncSession) -> list[uuid.UUID]:
    agents = select(_user_role.c.user_id).where(_user_role.c.role_name == "agent")
    found = [uuid.UUID(str(v)) for v in (await session.execute(agents)).scalars()]
    if not found:
        active = select(_user.c.id).where(_user.c.is_active.is_(True))
        found = [uuid.UUID(str(v)) for v in (await session.execute(active)).scalars()]
    return found


def rows(
    rng: random.Random, users: Sequence[uuid.UUID], n: int
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """(feed row, its deliveries, their attempts) for each of ``n`` notifications."""
    now = utcnow()
    for i in range(n):
        kind, title = KINDS[i % len(KINDS)]
        at = now - timedelta(seconds=rng.randrange(0, 90 * 86_400))
        note = {
            "id": new_id(), "user_id": users[i % len(users)], "rule_id": None,
            "event_id": new_id(), "event_type": kind, "subject": "",
            "title": title.format(i=i), "body": "", "link": None, "in_feed": True,
            "read_at": at + timedelta(minutes=5) if i % 3 else None, "created_at": at,
        }  # fmt: skip
        deliveries: list[dict[str, Any]] = []
        attempts: list[dict[str, Any]] = []
        if i % 4 == 0:
            dead = i % 40 == 0
            delivery = {
                "id": new_id(), "dedup_key": f"load:{note['id']}:email", "channel": "email",
                "notification_id": note["id"], "user_id": note["user_id"], "webhook_id": None,
                "event_id": note["event_id"], "event_type": kind,
                "status": "dead" if dead else "delivered", "attempts": 6 if dead else 1,
                "next_attempt_at": at, "payload": None,
                "last_error": "SMTP 451: try later" if dead else None,
                "last_status_code": 451 if dead else 250,
                "delivered_at": None if dead else at, "created_at": at, "updated_at": at,
            }  # fmt: skip
            deliveries.append(delivery)
            attempts.append({
                "id": new_id(), "delivery_id": delivery["id"], "attempt": delivery["attempts"],
                "ok": not dead, "status_code": delivery["last_status_code"],
                "error": delivery["last_error"], "at": at,
            })  # fmt: skip
        yield note, deliveries, attempts


async def seed_load(context: Any, *, notifications: int) -> dict[str, int]:
    rng = random.Random(14)
    async with context.session_factory() as session:
        users = await recipients(session)
    if not users:
        return {"notifications": 0, "deliveries": 0}
    written = delivered = 0
    batch: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]] = ([], [], [])
    with Progress() as progress:
        bar = progress.add_task("notifications", total=notifications)
        for note, deliveries, attempts in rows(rng, users, notifications):
            batch[0].append(note)
            batch[1].extend(deliveries)
            batch[2].extend(attempts)
            if len(batch[0]) == CHUNK:
                written, delivered = written + len(batch[0]), delivered + len(batch[1])
                await _write(context, batch)
                progress.update(bar, completed=written)
                batch = ([], [], [])
        if batch[0]:
            written, delivered = written + len(batch[0]), delivered + len(batch[1])
            await _write(context, batch)
            progress.update(bar, completed=written)
    return {"notifications": written, "deliveries": delivered}


async def _write(
    context: Any,
    batch: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    notes, deliveries, attempts = batch
    async with context.session_factory() as session:
        await session.execute(insert(Notification), notes)
        if deliveries:
            await session.execute(insert(Delivery), deliveries)
            await session.execute(insert(DeliveryAttempt), attempts)
        await session.commit()
