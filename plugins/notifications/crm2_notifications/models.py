"""The notifications plugin's tables (``notifications_*``).

Dedup lives in unique keys, not in code paths: one feed entry per (rule, event,
recipient) and one delivery per (rule, event, recipient, channel) — or per
(webhook subscription, event) — however often an event is redelivered.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.sql.expression import false
from sqlmodel import Field, SQLModel

from crm2_core.api import UtcDateTime, new_id, utcnow

INFO = {"plugin": "notifications"}
CHANNEL_NAME = r"^[a-z][a-z0-9_]{0,31}$"


def _ts(nullable: bool = False) -> Any:
    return Column(UtcDateTime(), nullable=nullable)


def _user(nullable: bool = False) -> Any:
    return Column(ForeignKey("auth_user.id", ondelete="CASCADE"), nullable=nullable)


class Rule(SQLModel, table=True):
    """Event type + conditions → templates → recipients → channels."""

    __tablename__ = "notifications_rule"
    __table_args__ = (Index(None, "event_type", "enabled"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    event_type: str = Field(max_length=100)
    conditions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    recipients: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    # rules shipped by a plugin (crm2_notifications_default_rules) carry its name and a key
    builtin_key: str | None = Field(default=None, max_length=100, unique=True)
    plugin: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Notification(SQLModel, table=True):
    """One entry of a user's in-app feed."""

    __tablename__ = "notifications_notification"
    __table_args__ = (
        UniqueConstraint("rule_id", "event_id", "user_id"),
        # the feed, newest first, and the unread count: one index range each
        Index(None, "user_id", "created_at", "id"),
        Index(None, "user_id", "read_at"),
        Index(None, "created_at", "id"),  # retention: the oldest entries first
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=_user())
    rule_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("notifications_rule.id", ondelete="SET NULL"), nullable=True),
    )
    event_id: uuid.UUID
    event_type: str = Field(max_length=100)
    subject: str = Field(default="", max_length=100)
    title: str = Field(max_length=300)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    link: str | None = Field(default=None, max_length=1000)
    # false when the rule has no in-app channel or the user switched it off: the row
    # then only carries the text the other channels deliver
    in_feed: bool = True
    read_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Delivery(SQLModel, table=True):
    """One message on one channel: pending → delivered, or retried and then dead."""

    __tablename__ = "notifications_delivery"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "user_id", "channel", "status"),
        Index(None, "created_at", "id"),
        # retention deletes an entry's deliveries (and PostgreSQL's cascade finds them)
        Index(None, "notification_id"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # "<rule>:<event>:<user>:<channel>" or "webhook:<subscription>:<event>"
    dedup_key: str = Field(max_length=200, unique=True)
    channel: str = Field(max_length=32)
    notification_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            ForeignKey("notifications_notification.id", ondelete="CASCADE"), nullable=True
        ),
    )
    user_id: uuid.UUID | None = Field(default=None, sa_column=_user(nullable=True))
    webhook_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("notifications_webhook.id", ondelete="CASCADE"), nullable=True),
    )
    event_id: uuid.UUID
    event_type: str = Field(max_length=100)
    # pending | sending | digest | delivered | dead | skipped
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    # the event envelope a webhook delivery POSTs
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    last_error: str | None = Field(default=None, max_length=1000)
    last_status_code: int | None = None
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class DeliveryAttempt(SQLModel, table=True):
    """The delivery log: every attempt with its outcome and response code."""

    __tablename__ = "notifications_delivery_attempt"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    delivery_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("notifications_delivery.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    attempt: int
    ok: bool
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Preference(SQLModel, table=True):
    """A user's choice for a channel and event type (``*`` = any): immediate, digest or off."""

    __tablename__ = "notifications_preference"
    __table_args__ = (UniqueConstraint("user_id", "channel", "event_type"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=_user())
    channel: str = Field(max_length=32)
    event_type: str = Field(max_length=100)
    mode: str = Field(max_length=16)  # immediate | digest | off
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class UserSettings(SQLModel, table=True):
    """A user's zone, quiet hours and the day of their last digest."""

    __tablename__ = "notifications_user_settings"
    __table_args__ = {"info": INFO}

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("auth_user.id", ondelete="CASCADE"), primary_key=True)
    )
    timezone: str | None = Field(default=None, max_length=64)
    quiet_start: str | None = Field(default=None, max_length=5)  # "22:00"
    quiet_end: str | None = Field(default=None, max_length=5)  # "07:00"
    last_digest_on: date | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class TelegramLink(SQLModel, table=True):
    """A Telegram chat linked to a user through ``/start <code>``."""

    __tablename__ = "notifications_telegram_link"
    __table_args__ = {"info": INFO}

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("auth_user.id", ondelete="CASCADE"), primary_key=True)
    )
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    linked_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    # the user confirms their sign-ins in this chat (crm2_confirm_login)
    confirm_logins: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    # set when the chat refused the bot for good (blocked it: 403): no notification goes
    # there until the user links it again (a new /start <code> makes a fresh row)
    disabled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    disabled_reason: str | None = Field(default=None, max_length=300)


class TelegramCode(SQLModel, table=True):
    """A one-time link code (stored as its SHA-256)."""

    __tablename__ = "notifications_telegram_code"
    __table_args__ = {"info": INFO}

    code_hash: str = Field(primary_key=True, max_length=64)
    user_id: uuid.UUID = Field(sa_column=_user())
    expires_at: datetime = Field(sa_column=_ts())
    used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class TelegramUpdate(SQLModel, table=True):
    """``update_id``s the webhook has handled: a repeated one is ignored."""

    __tablename__ = "notifications_telegram_update"
    __table_args__ = {"info": INFO}

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Webhook(SQLModel, table=True):
    """An outbound webhook subscription: events of ``event_types`` POSTed, signed, to ``url``."""

    __tablename__ = "notifications_webhook"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    url: str = Field(max_length=2000)
    # newest first; every secret signs while it is listed (rotation without downtime)
    secrets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    # why it was switched off by itself (the receiver answered 410 Gone); cleared when an
    # admin switches it on again
    disabled_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


MODELS: list[type[SQLModel]] = [
    Rule,
    Notification,
    Webhook,
    Delivery,
    DeliveryAttempt,
    Preference,
    UserSettings,
    TelegramLink,
    TelegramCode,
    TelegramUpdate,
]
