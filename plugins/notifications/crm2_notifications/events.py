"""The events the notifications plugin emits: its public, versioned contract.

``notifications.notification.*`` and ``notifications.feed.*`` carry ``user_id``,
so the ``notifications`` stream shows each user only their own. The rules never
react to ``notifications.*`` events (no loops).
"""

from __future__ import annotations

import uuid

from crm2_core.api import EventData


class NotificationCreated(EventData, type="notifications.notification.created", version=1):
    """A notification entered a user's in-app feed."""

    user_id: uuid.UUID
    notification_id: uuid.UUID
    title: str
    body: str
    link: str | None
    source_event_type: str
    source_event_id: uuid.UUID


class FeedRead(EventData, type="notifications.feed.read", version=1):
    """A user marked notifications read (``all_read``: every one up to now)."""

    user_id: uuid.UUID
    notification_ids: list[uuid.UUID]
    all_read: bool
    unread: int


class DeliveriesQueued(EventData, type="notifications.deliveries.queued", version=1):
    """Deliveries were queued for an event: the worker sends them now."""

    source_event_id: uuid.UUID
    count: int


class _Delivery(EventData):
    delivery_id: uuid.UUID
    channel: str
    user_id: uuid.UUID | None
    webhook_id: uuid.UUID | None
    source_event_type: str
    attempts: int
    status_code: int | None


class DeliverySucceeded(_Delivery, type="notifications.delivery.succeeded", version=1):
    """A delivery reached its channel's service."""


class DeliveryFailed(_Delivery, type="notifications.delivery.failed", version=1):
    """An attempt failed; another follows at ``next_attempt_at``."""

    error: str
    next_attempt_at: str


class DeliveryDeadLettered(_Delivery, type="notifications.delivery.dead_lettered", version=1):
    """A delivery gave up (attempts used up, or a failure that will not change)."""

    error: str


EVENT_TYPES: list[type[EventData]] = [
    NotificationCreated,
    FeedRead,
    DeliveriesQueued,
    DeliverySucceeded,
    DeliveryFailed,
    DeliveryDeadLettered,
]
