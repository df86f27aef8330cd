"""``crm2 seed demo``: a feed worth looking at, preferences, and a delivery log.

Every active user gets a welcome notification; with deals enabled (it seeds first:
plugins seed in dependency order, ties by name) each owner of a won demo deal gets
"Deal won: …" as deals' shipped rule would have made it, read by table name — the
plugin imports nothing of deals. Without deals, each user gets two sample
notifications. Agents' notifications carry an e-mail delivery with its attempt in
the log, one of them dead-lettered after six failed attempts so the log shows what a
failure looks like; the first agent reads e-mail as a daily digest, the first manager
has quiet hours. ``load`` (``CRM2_SEED_NOTIFICATIONS=<n>``): see ``seed_load``.
Seeding twice adds nothing (every row is keyed by a fixed event id per user).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import new_id, utcnow
from crm2_notifications.models import (
    Delivery,
    DeliveryAttempt,
    Notification,
    Preference,
    UserSettings,
)

DEMO_EVENT = uuid.UUID("6f1d8a57-2f0e-4a43-a7a9-6d2b8f0c5e11")
DEMO_NS = uuid.UUID("0c5b7f0e-4a1d-4c3e-9a8b-2f6d1e7a9b30")
_user = table("auth_user", column("id"), column("is_active"), column("created_at"))
_user_role = table("auth_user_role", column("user_id"), column("role_name"))
_deal = table("deals_deal", column("id"), column("title"), column("owner_id"), column("status"))
SAMPLES = (
    ("Task due today: call Anna Berg", "The renewal call you planned is due today.", "/"),
    ("Payment received: invoice 2026-014", "EUR 1,250.00 arrived for your client.", "/"),
)
FAILED = "SMTP 550: mailbox unavailable (demo)"


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def _people(session: AsyncSession) -> list[tuple[uuid.UUID, str | None]]:
    """Active users, oldest first, with one of their roles."""
    stmt = (
        select(_user.c.id, _user_role.c.role_name)
        .select_from(_user.outerjoin(_user_role, _user_role.c.user_id == _user.c.id))
        .where(_user.c.is_active.is_(True))
        .order_by(_user.c.created_at, _user.c.id, _user_role.c.role_name)
    )
    seen: dict[uuid.UUID, str | None] = {}
    for user_id, role in (await session.execute(stmt)).all():
        seen.setdefault(_uuid(user_id), role)
    return list(seen.items())


async def _won_deals(session: AsyncSession, context: Any) -> list[tuple[uuid.UUID, str, uuid.UUID]]:
    if not context.is_enabled("deals"):
        return []
    stmt = select(_deal.c.id, _deal.c.title, _deal.c.owner_id).where(_deal.c.status == "won")
    return [(_uuid(i), str(t), _uuid(o)) for i, t, o in (await session.execute(stmt)).all()]


def _notes(
    user_id: uuid.UUID, won: list[tuple[uuid.UUID, str, uuid.UUID]], deals_on: bool
) -> list[tuple[uuid.UUID, str, str, str, str]]:
    """(event id, event type, title, body, link) of this user's demo notifications."""
    found = [(DEMO_EVENT, "notifications.demo.welcome", "Welcome to crm2",
              "Notifications about your deals, tasks and policies arrive here.", "/")]  # fmt: skip
    for deal_id, title, owner in won:
        if owner == user_id:
            event = uuid.uuid5(DEMO_NS, f"won:{deal_id}")
            found.append((event, "deals.deal.won", f"Deal won: {title}",
                          "Congratulations: the deal moved to a won stage.",
                          f"/deals/{deal_id}"))  # fmt: skip
    if not deals_on:
        for key, (title, body, link) in enumerate(SAMPLES):
            event = uuid.uuid5(DEMO_NS, f"sample:{key}:{user_id}")
            found.append((event, "notifications.demo.sample", title, body, link))
    return found


async def _demo(context: Any) -> None:
    now = utcnow()
    async with context.session_factory() as session:
        people = await _people(session)
        won = await _won_deals(session, context)
        have = {
            (u, e)
            for u, e in (
                await session.execute(select(col(Notification.user_id), col(Notification.event_id)))
            ).all()
        }
        agents = [u for u, role in people if role == "agent"]
        managers = [u for u, role in people if role == "manager"]
        dead_done = False
        for user_id, role in people:
            for n, (event, kind, title, body, link) in enumerate(
                _notes(user_id, won, context.is_enabled("deals"))
            ):
                if (user_id, event) in have:
                    continue
                at = now - timedelta(hours=n * 7 + 1)
                note = Notification(
                    id=new_id(), user_id=user_id, event_id=event, event_type=kind,
                    title=title, body=body, link=link, created_at=at,
                    read_at=at + timedelta(minutes=30) if n % 3 == 2 else None,
                )  # fmt: skip
                session.add(note)
                if role == "agent" and n > 0:
                    dead = not dead_done
                    dead_done = True
                    await session.flush()
                    _email(session, note, at, dead)
        if agents and await session.get(UserSettings, agents[0]) is None:
            session.add(UserSettings(user_id=agents[0], timezone="Europe/Berlin"))
            session.add(Preference(user_id=agents[0], channel="email", event_type="*",
                                   mode="digest"))  # fmt: skip
        if managers and await session.get(UserSettings, managers[0]) is None:
            session.add(UserSettings(user_id=managers[0], timezone="Europe/Berlin",
                                     quiet_start="22:00", quiet_end="07:00"))  # fmt: skip
        await session.commit()


def _email(session: AsyncSession, note: Notification, at: Any, dead: bool) -> None:
    """The e-mail that went with a demo notification, and its log."""
    delivery = Delivery(
        id=new_id(), dedup_key=f"demo:{note.event_id}:{note.user_id}:email"[:200],
        channel="email", notification_id=note.id, user_id=note.user_id, event_id=note.event_id,
        event_type=note.event_type, status="dead" if dead else "delivered",
        attempts=6 if dead else 1, next_attempt_at=at, created_at=at, updated_at=at,
        delivered_at=None if dead else at + timedelta(seconds=2),
        last_status_code=550 if dead else 250, last_error=FAILED if dead else None,
    )  # fmt: skip
    session.add(delivery)
    for attempt in range(1, delivery.attempts + 1):
        session.add(DeliveryAttempt(
            delivery_id=delivery.id, attempt=attempt, ok=not dead,
            status_code=delivery.last_status_code, error=FAILED if dead else None,
            at=at + timedelta(minutes=2 ** attempt),
        ))  # fmt: skip


def seed(name: str, context: Any) -> Awaitable[Any] | None:
    """``demo``, or ``load`` sized by CRM2_SEED_NOTIFICATIONS (as payments reads its own)."""
    if name == "demo":
        return _demo(context)
    if name == "load":
        from crm2_core.api import env_count
        from crm2_notifications.seed_load import seed_load

        count = env_count("CRM2_SEED_NOTIFICATIONS", 0)
        return seed_load(context, notifications=count) if count > 0 else None
    return None
