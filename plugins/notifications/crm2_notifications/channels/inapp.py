"""``inapp``: the feed itself. The engine writes the feed entry and its stream event in the
rule's transaction, so there is nothing left to send."""

from __future__ import annotations

from crm2_hookspecs import Crm2Context
from crm2_notifications.hookspecs import NotificationChannel, OutboundMessage, SendResult

INAPP = "inapp"


class InAppChannel(NotificationChannel):
    name = INAPP
    title = "In-app feed"

    async def send(self, message: OutboundMessage, context: Crm2Context) -> SendResult:
        return SendResult.delivered()
