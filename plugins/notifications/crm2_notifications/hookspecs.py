"""The notifications plugin's own hooks: delivery channels and plugins' default rules.

A plugin that adds a channel (Slack, SMS, …) declares ``depends=("notifications",)``,
subclasses :class:`NotificationChannel` and returns an instance from
``crm2_notifications_channels``. A plugin that ships default rules for its own
events implements ``crm2_notifications_default_rules`` with plain mappings and
``@hookimpl(optionalhook=True)``, so it needs no import of notifications and
starts fine where notifications is not enabled. docs/plugins/hooks.md documents both;
``crm2_notifications.testing.ChannelContract`` is the test suite every channel passes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from crm2_hookspecs import Crm2Context, hookspec

CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Recipient:
    """The user a message is for (``None`` on a webhook delivery, which has no person)."""

    user_id: uuid.UUID
    email: str
    full_name: str = ""
    timezone: str = "UTC"


@dataclass(frozen=True)
class OutboundMessage:
    """One message for one channel.

    ``delivery_id`` stays the same across retries: use it as the idempotency key
    towards the service you talk to (a Message-ID, a ``webhook-id``). ``address`` is
    where to send it, as the channel's ``addresses`` gave it (an e-mail address, a
    chat id, a URL); ``extra`` carries channel-specific data (a webhook's secrets). ``title`` and
    ``body`` are plain text, already rendered; ``link`` an absolute URL or a path;
    ``event`` the envelope (JSON form) of the event that caused it; ``digest`` holds
    the folded messages when this one is a daily digest.
    """

    delivery_id: uuid.UUID
    channel: str
    title: str
    body: str
    event_type: str
    recipient: Recipient | None = None
    address: str | None = None
    link: str | None = None
    event: Mapping[str, Any] = field(default_factory=dict)
    webhook_id: uuid.UUID | None = None
    digest: tuple[tuple[str, str], ...] = ()
    attempt: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What a channel's ``send`` answers; it never raises for a failed delivery.

    ``retry=False`` dead-letters at once (a blocked bot, a 4xx that will not change);
    ``retry_after`` asks for the next attempt no earlier than that many seconds;
    ``pause_channel`` (with ``retry_after``) says the service's limit is the whole
    channel's, not this message's (a bot's flood control): every delivery of the
    channel, in every worker, waits that long; ``address_gone`` says the address
    will never take a message again (a bot its user blocked): the channel's
    :meth:`NotificationChannel.address_gone` is called to stop using it.
    """

    ok: bool
    status_code: int | None = None
    error: str | None = None
    retry: bool = True
    retry_after: float | None = None
    pause_channel: bool = False
    address_gone: bool = False

    @classmethod
    def delivered(cls, status_code: int | None = None) -> SendResult:
        return cls(ok=True, status_code=status_code)

    @classmethod
    def failed(
        cls,
        error: str,
        *,
        status_code: int | None = None,
        retry: bool = True,
        retry_after: float | None = None,
        pause_channel: bool = False,
        address_gone: bool = False,
    ) -> SendResult:
        return cls(
            ok=False,
            status_code=status_code,
            error=error[:1000],
            retry=retry,
            retry_after=retry_after,
            pause_channel=pause_channel,
            address_gone=address_gone,
        )


class NotificationChannel:
    """A delivery channel. Subclass it; every method but ``send`` has a default.

    :cvar name: the channel's name in rules and preferences (``[a-z][a-z0-9_]*``).
    :cvar title: a human title.
    :cvar rate_per_second: a limit for the whole channel (a bot's), on top of the
        per-user one; ``None``: none.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    rate_per_second: float | None = None

    def enabled(self, context: Crm2Context) -> bool:
        """Whether it is configured in this deployment; deliveries wait while it is not."""
        return True

    async def addresses(
        self, user_ids: Collection[uuid.UUID], session: Any, context: Crm2Context
    ) -> Mapping[uuid.UUID, str]:
        """Where each user is reached on this channel; a user left out is not reachable.

        Called while notifications are created and before each send, with ``session``
        (SQLAlchemy ``AsyncSession``) to read your tables through: do not open another
        one (on SQLite it would wait for this one). The default: every user, by id.
        """
        return {user_id: str(user_id) for user_id in user_ids}

    async def send(self, message: OutboundMessage, context: Crm2Context) -> SendResult:
        """Deliver ``message`` to ``message.address``; return a :class:`SendResult`.

        Never raise for a failed delivery, and do not touch the database here.
        """
        raise NotImplementedError

    async def address_gone(
        self, user_id: uuid.UUID, address: str, reason: str, session: Any, context: Crm2Context
    ) -> None:
        """``send`` answered ``address_gone`` for the user's ``address``: stop using it
        (leave it out of ``addresses`` until the user links it again) and keep ``reason``.

        Called in the delivery's transaction, with its ``session``: write there, never
        commit. The default does nothing (the next deliveries are tried and fail again).
        """
        return None


class NotificationsSpec:
    """Hooks the notifications plugin calls (registered through its manifest)."""

    @hookspec
    def crm2_notifications_channels(self, context: Crm2Context) -> Sequence[NotificationChannel]:
        """Return the delivery channels this plugin adds.

        :param context: the application context (read your plugin's settings from it).
        :returns: :class:`NotificationChannel` instances; names must be unique.
        """
        raise NotImplementedError

    @hookspec
    def crm2_notifications_default_rules(self) -> Sequence[Mapping[str, Any]]:
        """Return the notification rules this plugin ships for its own events.

        Each mapping is a rule body as ``POST /api/v1/notifications/rules`` takes it
        plus a ``key`` unique within the plugin. They are stored once, at start-up,
        under ``<plugin>:<key>``; admins may then change or disable them, and they
        are inactive while their plugin is not enabled.

        :returns: mappings with ``key``, ``name``, ``event_type``, ``template`` and
            optional ``conditions``, ``recipients``, ``channels``, ``enabled``.
        """
        raise NotImplementedError
