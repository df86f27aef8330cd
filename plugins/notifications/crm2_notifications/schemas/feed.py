"""The feed, preferences, the delivery log and the Telegram link."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from crm2_core.api import RequestModel, ResponseModel

Mode = Literal["immediate", "digest", "off"]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class NotificationPublic(ResponseModel):
    id: uuid.UUID
    title: str
    body: str
    link: str | None
    event_type: str
    subject: str
    read_at: datetime | None
    created_at: datetime


class UnreadCount(ResponseModel):
    unread: int


class MarkRead(RequestModel):
    ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=500)]


class ReadResult(ResponseModel):
    marked: int
    unread: int


class PreferenceIn(RequestModel):
    channel: Annotated[str, Field(pattern=r"^(\*|[a-z][a-z0-9_]{0,31})$")]
    event_type: Annotated[str, Field(max_length=100, pattern=r"^(\*|[a-z][a-z0-9_.]*[a-z0-9_])$")]
    mode: Mode


class PreferencesIn(RequestModel):
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    quiet_start: HHMM | None = None
    quiet_end: HHMM | None = None
    rules: Annotated[list[PreferenceIn], Field(max_length=200)] | None = Field(
        None, description="replaces every channel/event-type choice when sent"
    )


class PreferencesPublic(ResponseModel):
    timezone: str
    quiet_start: str | None
    quiet_end: str | None
    rules: list[PreferenceIn]
    channels: list[str] = Field(description="the channels this deployment has")
    version: int


class DeliveryPublic(ResponseModel):
    id: uuid.UUID
    channel: str
    status: str
    user_id: uuid.UUID | None
    webhook_id: uuid.UUID | None
    event_id: uuid.UUID
    event_type: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryAttemptPublic(ResponseModel):
    attempt: int
    ok: bool
    status_code: int | None = Field(description="the service's answer (SMTP or HTTP code)")
    error: str | None
    at: datetime


class ChannelDelivery(ResponseModel):
    """One channel's delivery of a notification, with every attempt."""

    id: uuid.UUID
    channel: str
    status: str = Field(description="pending | sending | digest | delivered | dead | skipped")
    attempts: int
    next_attempt_at: datetime | None = Field(
        description="when the next attempt (a retry, after quiet hours or the rate limit) is "
        "due; null once delivered, dead or waiting for the digest"
    )
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    log: list[DeliveryAttemptPublic]


class NotificationDeliveries(ResponseModel):
    notification_id: uuid.UUID
    items: list[ChannelDelivery] = Field(description="one per channel besides the feed itself")


class TelegramLinkCode(ResponseModel):
    code: str
    url: str | None = Field(description="t.me deep link, when the bot's name is configured")
    expires_at: datetime


class TelegramStatus(ResponseModel):
    linked: bool = Field(description="a chat is linked (through /start <code>)")
    linked_at: datetime | None
    confirm_logins: bool = Field(description="sign-ins are confirmed in the linked chat")
    disabled_at: datetime | None = Field(
        None,
        description="when the chat refused the bot for good; no notifications go there "
        "until a chat is linked again",
    )
    disabled_reason: str | None = Field(None, description="what Telegram answered then")


class TelegramLoginConfirmationIn(RequestModel):
    enabled: bool = Field(description="confirm each sign-in with the bot's Yes / No buttons")
