"""Retention (``CRM2_NOTIFICATIONS_RETENTION_DAYS``): the ``digests`` job deletes feed
entries past it, read or not, with their deliveries and attempts, and settled webhook
deliveries; anything still to be sent stays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from crm2_notifications.models import Delivery, DeliveryAttempt, Notification, Webhook
from crm2_notifications.service import retention
from notifications_kit import Notifications

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _note(user_id: uuid.UUID, age_days: int, **values: Any) -> Notification:
    return Notification(
        user_id=user_id,
        event_id=uuid.uuid4(),
        event_type="ping.thing.happened",
        title=f"{age_days} days old",
        created_at=NOW - timedelta(days=age_days),
        **values,
    )


def _delivery(age_days: int, status: str, **values: Any) -> Delivery:
    return Delivery(
        dedup_key=str(uuid.uuid4()),
        channel=values.pop("channel", "email"),
        event_id=uuid.uuid4(),
        event_type="ping.thing.happened",
        status=status,
        created_at=NOW - timedelta(days=age_days),
        **values,
    )


async def _fill(n: Notifications, user_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """Old and new entries, deliveries and webhook deliveries; their ids by name."""
    hook = Webhook(
        name="receiver", url="https://example.com/hook", secrets=["s"], event_types=["*"]
    )
    old_read = _note(user_id, 120, read_at=NOW - timedelta(days=119))
    old_unread = _note(user_id, 91, in_feed=False)
    old_waiting = _note(user_id, 100)
    fresh = _note(user_id, 10)
    rows: dict[str, Any] = {
        "hook": hook,
        "old_read": old_read,
        "old_unread": old_unread,
        "old_waiting": old_waiting,
        "fresh": fresh,
    }
    async with n.context.session_factory() as session:
        session.add_all(rows.values())
        await session.flush()
        rows["old_sent"] = _delivery(91, "delivered", notification_id=old_read.id, user_id=user_id)
        rows["old_pending"] = _delivery(
            100, "digest", notification_id=old_waiting.id, user_id=user_id
        )
        rows["fresh_sent"] = _delivery(10, "delivered", notification_id=fresh.id, user_id=user_id)
        rows["hook_old_dead"] = _delivery(95, "dead", channel="webhook", webhook_id=hook.id)
        rows["hook_old_pending"] = _delivery(95, "pending", channel="webhook", webhook_id=hook.id)
        rows["hook_fresh"] = _delivery(5, "delivered", channel="webhook", webhook_id=hook.id)
        session.add_all([rows[k] for k in rows if k.startswith(("old_", "fresh_", "hook_"))
                         and isinstance(rows[k], Delivery)])  # fmt: skip
        await session.flush()
        for name in ("old_sent", "hook_old_dead", "fresh_sent"):
            session.add(DeliveryAttempt(delivery_id=rows[name].id, attempt=1, ok=True, at=NOW))
        await session.commit()
    return {name: row.id for name, row in rows.items()}


async def test_entries_past_retention_go_with_their_deliveries_read_or_not(
    notifications: Notifications,
) -> None:
    (user,) = await notifications.users("agent")
    ids = await _fill(notifications, user.id)

    assert await retention.prune(notifications.context, now=NOW) == 3  # 2 entries, 1 webhook's

    notes = {row.id for row in await notifications.rows(Notification)}
    assert notes == {ids["old_waiting"], ids["fresh"]}  # a digest still to send keeps its entry
    deliveries = {row.id for row in await notifications.rows(Delivery)}
    assert deliveries == {
        ids["old_pending"],
        ids["fresh_sent"],
        ids["hook_old_pending"],
        ids["hook_fresh"],
    }
    attempts = {row.delivery_id for row in await notifications.rows(DeliveryAttempt)}
    assert attempts == {ids["fresh_sent"]}
    assert await retention.prune(notifications.context, now=NOW) == 0  # nothing left to do


async def test_retention_zero_keeps_everything(crm2_app_factory: Any) -> None:
    import ping_plugin

    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": {"retention_days": 0}},
    )
    n = Notifications(app)
    (user,) = await n.users("agent")
    await _fill(n, user.id)
    assert await retention.prune(n.context, now=NOW + timedelta(days=3650)) == 0
    assert len(await n.rows(Notification)) == 4


async def test_a_backlog_is_pruned_in_bounded_batches(
    notifications: Notifications, monkeypatch: Any
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    monkeypatch.setattr(retention, "MAX_BATCHES", 2)
    (user,) = await notifications.users("agent")
    async with notifications.context.session_factory() as session:
        session.add_all(_note(user.id, 200 + i) for i in range(8))
        await session.commit()
    assert await retention.prune(notifications.context, now=NOW) == 6  # two batches of three
    assert len(await notifications.rows(Notification)) == 2
    assert await retention.prune(notifications.context, now=NOW) == 2


async def test_a_delivery_waiting_for_a_channel_never_configured_goes_after_retention(
    notifications: Notifications,
) -> None:
    """E-mail is not configured: its delivery waits, but not forever — past the
    retention it is dead-lettered and pruned with its entry."""
    from crm2_notifications.service.delivery import send_due

    from crm2_core.api import utcnow

    n = notifications
    admin, owner = await n.users("admin", "agent")
    await n.rule(admin, channels=["email"], recipients={"data_fields": ["owner_id"]})
    await n.ping(admin, owner_id=owner.id)
    await n.settle()
    (waiting,) = await n.rows(Delivery)
    assert waiting.status == "pending" and "not available" in (waiting.last_error or "")
    start = utcnow()

    month = start + timedelta(days=30)  # within the retention: it still waits
    assert (await send_due(n.context, now=month))["deferred"] == 1
    assert await retention.prune(n.context, now=month) == 0
    ((status, attempts),) = [(d.status, d.attempts) for d in await n.rows(Delivery)]
    assert (status, attempts) == ("pending", 0)

    later = start + timedelta(days=91)
    assert (await send_due(n.context, now=later))["dead"] == 1
    (dead,) = await n.rows(Delivery)
    assert dead.status == "dead" and "longer than the retention" in (dead.last_error or "")
    assert await retention.prune(n.context, now=later) == 1
    assert await n.rows(Notification) == [] and await n.rows(Delivery) == []
