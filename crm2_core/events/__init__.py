"""Events: typed event classes, the outbox, the relay and the durable log."""

from __future__ import annotations

from crm2_core.events.envelope import SYSTEM, Actor, Envelope
from crm2_core.events.outbox import publish, publish_many, publish_row
from crm2_core.events.types import EventData, EventTypeRegistry

__all__ = [
    "SYSTEM",
    "Actor",
    "Envelope",
    "EventData",
    "EventTypeRegistry",
    "publish",
    "publish_many",
    "publish_row",
]
