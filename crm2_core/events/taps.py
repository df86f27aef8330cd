"""Hearing every relayed event in this process, for caches that must drop stale entries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crm2_core.events.envelope import Envelope

Tap = Callable[[Sequence[Envelope]], None]


def hear_relayed_events(context: Any, tap: Tap) -> bool:
    """Call ``tap`` with each batch of relayed events this process hears of, in log order.

    The live streams' hub is what hears them (this process's relay, or the Redis
    subscription when several processes serve): without the streams plugin nothing
    is heard and this returns ``False``. A batch may follow a hole (positions this
    process never heard of): a cache that relies on the taps must check that the
    positions it saw are contiguous. ``tap`` must be quick and must not raise.
    """
    from crm2_core.context import STREAMS

    streams = context.find(STREAMS)
    if streams is None:
        return False
    streams.hub.taps.append(tap)
    return True
