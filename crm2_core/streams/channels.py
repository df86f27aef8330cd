"""The SSE channels the enabled plugins declare (``crm2_sse_channels``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm2_core.errors import ConfigurationError, NotFound
from crm2_core.events.envelope import Envelope
from crm2_core.sse_audience import is_audience_rule
from crm2_hookspecs import Principal, SseChannel

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)

CHANNEL_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
EVERYONE = "everyone"  # the audience of a channel without a can_see rule


class UnknownChannel(NotFound):
    slug, title = "unknown-stream-channel", "No such stream channel"


@dataclass(frozen=True)
class RegisteredChannel:
    plugin: str
    channel: SseChannel

    @property
    def name(self) -> str:
        return self.channel.name

    @property
    def permission(self) -> str:
        return self.channel.permission

    def event_types(self, known: list[str]) -> list[str]:
        """The exact type names among ``known`` this channel carries (to filter the log)."""
        return [t for t in known if self.channel.matches(t)]

    def audience(self, principal: Principal, context: AppContext | None = None) -> Hashable | None:
        """What decides which events ``principal`` sees, where the channel's rule needs no
        await: principals of equal audiences see the same events, so a live event is
        checked once per distinct audience (:meth:`sees`), not once per connection.

        ``None`` when the rule is the plugin's own coroutine: :meth:`can_see` per event.
        """
        rule = self.channel.can_see
        if rule is None:
            return EVERYONE
        if is_audience_rule(rule):
            audience: Hashable = rule.__self__.stream_audience(principal, context)  # type: ignore[attr-defined]
            return audience
        return None

    def sees(self, audience: Hashable, event: Envelope) -> bool:
        """:meth:`can_see` for an :meth:`audience` (not ``None``); an error hides the event."""
        rule = self.channel.can_see
        if rule is None:
            return audience == EVERYONE
        try:
            return bool(rule.__self__.stream_sees(audience, event))  # type: ignore[attr-defined]
        except Exception:
            log.exception(
                "%s: the visibility rule of channel %s failed on event %s; not sent",
                self.plugin,
                self.name,
                event.id,
            )
            return False

    async def can_see(self, principal: Principal, event: Envelope, context: AppContext) -> bool:
        """The channel's per-event rule; an error in it hides the event (fail closed)."""
        if self.channel.can_see is None:
            return True
        try:
            return bool(await self.channel.can_see(principal, event, context))
        except Exception:
            log.exception(
                "%s: can_see of channel %s failed on event %s; not sent",
                self.plugin,
                self.name,
                event.id,
            )
            return False


def collect_channels(context: AppContext) -> dict[str, RegisteredChannel]:
    channels: dict[str, RegisteredChannel] = {}
    for plugin, channel in context.plugins.collect("crm2_sse_channels", context=context):
        if not isinstance(channel, SseChannel):
            raise ConfigurationError(
                f"{plugin}: crm2_sse_channels returned {channel!r}; return SseChannel records"
            )
        if not CHANNEL_NAME_PATTERN.match(channel.name):
            raise ConfigurationError(
                f"{plugin}: stream channel name {channel.name!r} must match "
                f"{CHANNEL_NAME_PATTERN.pattern}"
            )
        if channel.name in channels:
            raise ConfigurationError(
                f"{plugin} declares stream channel {channel.name!r}, already declared by "
                f"{channels[channel.name].plugin}: rename one"
            )
        channels[channel.name] = RegisteredChannel(plugin, channel)
    return channels


def get_channel(channels: dict[str, RegisteredChannel], name: str) -> RegisteredChannel:
    try:
        return channels[name]
    except KeyError:
        raise UnknownChannel(f"no stream channel {name!r}; see /asyncapi.json") from None
