"""The channels of this deployment: every ``crm2_notifications_channels`` answer, by name.

Built once per application context (the built-in four come through the same
hook as a third party's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm2_core.api import ConfigurationError
from crm2_notifications.hookspecs import CHANNEL_NAME, NotificationChannel


@dataclass
class ChannelRegistry:
    channels: dict[str, NotificationChannel] = field(default_factory=dict)

    def get(self, name: str) -> NotificationChannel | None:
        return self.channels.get(name)

    def names(self) -> list[str]:
        return sorted(self.channels)


def build(context: Any) -> ChannelRegistry:
    registry = ChannelRegistry()
    for plugin, channel in context.plugins.collect("crm2_notifications_channels", context=context):
        name = getattr(channel, "name", "")
        if not isinstance(channel, NotificationChannel) or not CHANNEL_NAME.match(name):
            raise ConfigurationError(
                f"{plugin}: crm2_notifications_channels must return NotificationChannel "
                f"instances named like [a-z][a-z0-9_]*, got {channel!r}"
            )
        if name in registry.channels:
            raise ConfigurationError(f"{plugin}: a notification channel {name!r} exists already")
        registry.channels[name] = channel
    return registry


def registry(context: Any) -> ChannelRegistry:
    found: ChannelRegistry | None = context.find(ChannelRegistry)
    if found is None:
        found = build(context)
        context.provide(ChannelRegistry, found)
    return found
