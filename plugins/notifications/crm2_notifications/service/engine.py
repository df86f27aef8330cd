"""The rules engine: one event in, feed entries and queued deliveries out.

Runs in the event handler's transaction (the core records that the handler
applied the event: a redelivery changes nothing). Unique keys hold the same
promise should that record be lost: one feed entry per (rule, event,
recipient), one delivery per (rule, event, recipient, channel) and per
(webhook, event). Nothing is sent here: deliveries are queued, and a
``notifications.deliveries.queued`` event makes the worker send them after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import SYSTEM, new_id, publish, publish_many, users_permitted
from crm2_notifications import clock, conditions, quiet, templates
from crm2_notifications.channels import registry
from crm2_notifications.channels.inapp import INAPP
from crm2_notifications.events import DeliveriesQueued, NotificationCreated
from crm2_notifications.models import Delivery, Notification, Rule, UserSettings, Webhook
from crm2_notifications.repository import admin as admin_repo
from crm2_notifications.repository import feed as feed_repo
from crm2_notifications.repository import people
from crm2_notifications.service import recipients
from crm2_notifications.service.delivery import READ
from crm2_notifications.service.modes import DIGEST, OFF, Modes

WEBHOOK = "webhook"


def pattern_matches(patterns: list[str], event_type: str) -> bool:
    return any(
        event_type.startswith(p[:-1]) if p.endswith(".*") else p in ("*", event_type)
        for p in patterns
    )


def _release(now: datetime, row: UserSettings | None, default_zone: str) -> datetime:
    if row is None:
        return now
    return quiet.release_at(
        now, quiet.zone(row.timezone, default_zone), row.quiet_start, row.quiet_end
    )


async def _taken(session: AsyncSession, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    stmt = select(col(Delivery.dedup_key)).where(col(Delivery.dedup_key).in_(keys))
    return set((await session.execute(stmt)).scalars())


async def apply(
    session: AsyncSession, context: Any, envelope: Mapping[str, Any], event_id: uuid.UUID
) -> int:
    """Apply the enabled rules and webhook subscriptions to one event; returns deliveries queued."""
    event_type = str(envelope.get("type"))
    if event_type.startswith("notifications."):
        return 0
    rules = await admin_repo.rules_for(session, event_type)
    hooks = await admin_repo.active_webhooks(session)
    return await _apply(session, context, rules, hooks, envelope, event_id)


async def nothing_for(
    session: AsyncSession,
    context: Any,
    event_type: str,
    envelope_of: Callable[[], Mapping[str, Any]],
) -> bool:
    """Would ``apply`` queue nothing for this event: no enabled rule on its type (of an
    enabled plugin) whose conditions it meets, no active webhook whose patterns take it?
    One read; ``envelope_of()`` only when a rule is on the type."""
    if event_type.startswith("notifications."):
        return True
    envelope: Mapping[str, Any] | None = None
    for is_rule, plugin, found in await admin_repo.what_applies_to(session, event_type):
        if not is_rule:
            if pattern_matches(found, event_type):
                return False
            continue
        if plugin and not context.is_enabled(plugin):
            continue
        envelope = envelope_of() if envelope is None else envelope
        if conditions.matches(found, envelope):
            return False
    return True


async def apply_batch(
    session: AsyncSession,
    context: Any,
    events: Sequence[Any],
    envelope_of: Callable[[Any], Mapping[str, Any]],
) -> int:
    """``apply`` on each event (``.type``, ``.id``) in turn, the rules and webhooks read
    once; ``envelope_of(event)`` only for the events something applies to."""
    types = {event.type for event in events if not event.type.startswith("notifications.")}
    if not types:
        return 0
    rules_by_type: dict[str, list[Rule]] = {}
    for rule in await admin_repo.rules_for_types(session, types):
        rules_by_type.setdefault(rule.event_type, []).append(rule)
    hooks = await admin_repo.active_webhooks(session)
    queued = 0
    for event in events:
        if event.type not in types:
            continue
        rules = rules_by_type.get(event.type, [])
        if rules or any(pattern_matches(hook.event_types, event.type) for hook in hooks):
            queued += await _apply(session, context, rules, hooks, envelope_of(event), event.id)
    return queued


async def _apply(
    session: AsyncSession,
    context: Any,
    rules: Sequence[Rule],
    hooks: Sequence[Webhook],
    envelope: Mapping[str, Any],
    event_id: uuid.UUID,
) -> int:
    event_type = str(envelope.get("type"))
    queued = 0
    for rule in rules:
        if rule.plugin and not context.is_enabled(rule.plugin):
            continue  # a shipped rule of a plugin switched off
        if conditions.matches(rule.conditions, envelope):
            queued += await _apply_rule(session, context, rule, envelope, event_id)
    queued += await _webhooks(session, envelope, event_id, event_type, hooks)
    if queued:
        publish(
            session,
            DeliveriesQueued(source_event_id=event_id, count=queued),
            subject=event_id,
            actor=SYSTEM,
        )
    return queued


async def _apply_rule(
    session: AsyncSession,
    context: Any,
    rule: Rule,
    envelope: Mapping[str, Any],
    event_id: uuid.UUID,
) -> int:
    found = await recipients.record(context, rule.recipients, envelope, session)
    wanted = await recipients.resolve(session, rule.recipients, envelope, found)
    wanted -= await feed_repo.exists_for(session, rule.id, event_id)
    # only active users holding notifications:read: anyone else could never read the entry
    # (it would pile up), and their deliveries would be skipped when due
    persons = await users_permitted(context, session, wanted, READ)
    if not persons:
        return 0
    settings = context.plugin_settings("notifications")
    now = clock.now(context)
    event_type = str(envelope.get("type"))
    variables = templates.variables(envelope, found)
    template = rule.template
    sources = [str(template.get("title") or rule.name)]
    sources += [str(template.get(key) or "") for key in ("body", "link")]
    title, body, link_text = await templates.render_all(sources, variables)  # off the loop
    # a title rendering blank (a value this event lacks) would make an entry without one
    # and a Telegram message the Bot API refuses for good ("text is empty"): the rule's name
    title = (title if title.strip() else rule.name)[:300]
    link = templates.safe_link(link_text[:1000])

    ids = sorted(persons)
    modes = Modes(await people.preferences(session, ids, event_type))
    user_settings = await people.user_settings(session, ids)
    channels = registry(context)
    reach: dict[str, set[uuid.UUID]] = {}
    for name in rule.channels:
        channel = channels.get(name)
        if name != INAPP and channel is not None:
            reach[name] = set(await channel.addresses(ids, session, context))

    # Core inserts of plain rows: a fan-out to thousands must not build an ORM object each
    subject = str(envelope.get("subject") or "")[:100]
    notes: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "user_id": user_id,
            "rule_id": rule.id,
            "event_id": event_id,
            "event_type": event_type,
            "subject": subject,
            "title": title,
            "body": body,
            "link": link,
            "read_at": None,
            "created_at": now,
            "in_feed": INAPP in rule.channels and modes.of(user_id, INAPP, event_type) != OFF,
        }
        for user_id in ids
    ]
    await session.execute(insert(Notification), notes)

    await publish_many(
        session,
        (
            (
                NotificationCreated(
                    user_id=row["user_id"],
                    notification_id=row["id"],
                    title=title,
                    body=body,
                    link=link,
                    source_event_type=event_type,
                    source_event_id=event_id,
                ),
                row["id"],
            )
            for row in notes
            if row["in_feed"]
        ),
        actor=SYSTEM,
    )
    deliveries: list[dict[str, Any]] = []
    for row in notes:
        for name in rule.channels:
            if name == INAPP or (name in reach and row["user_id"] not in reach[name]):
                continue
            mode = modes.of(row["user_id"], name, event_type)
            if mode == OFF:
                continue
            release = _release(now, user_settings.get(row["user_id"]), settings.default_timezone)
            deliveries.append(
                {
                    "id": new_id(),
                    "dedup_key": f"{rule.id}:{event_id}:{row['user_id']}:{name}",
                    "channel": name,
                    "notification_id": row["id"],
                    "user_id": row["user_id"],
                    "webhook_id": None,
                    "event_id": event_id,
                    "event_type": event_type,
                    "status": "digest" if mode == DIGEST else "pending",
                    "attempts": 0,
                    "next_attempt_at": release,
                    "last_error": None,
                    "last_status_code": None,
                    "delivered_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    taken = await _taken(session, [d["dedup_key"] for d in deliveries])
    fresh = [d for d in deliveries if d["dedup_key"] not in taken]
    if fresh:
        await session.execute(insert(Delivery), fresh)
    return sum(1 for d in fresh if d["status"] == "pending")


async def _webhooks(
    session: AsyncSession,
    envelope: Mapping[str, Any],
    event_id: uuid.UUID,
    event_type: str,
    hooks: Sequence[Webhook],
) -> int:
    rows = [
        Delivery(
            dedup_key=f"{WEBHOOK}:{hook.id}:{event_id}",
            channel=WEBHOOK,
            webhook_id=hook.id,
            event_id=event_id,
            event_type=event_type,
            payload=dict(envelope),
        )
        for hook in hooks
        if pattern_matches(hook.event_types, event_type)
    ]
    taken = await _taken(session, [d.dedup_key for d in rows])
    fresh = [d for d in rows if d.dedup_key not in taken]
    session.add_all(fresh)
    if fresh:
        await session.flush()
    return len(fresh)
