"""Events as SSE messages, each encoded once per application however many connections send it."""

from __future__ import annotations

from collections import OrderedDict

from crm2_core.events.envelope import Envelope
from crm2_core.streams.response import encode_message


def event_message(envelope: Envelope) -> bytes:
    return encode_message(
        # the trace context is for crm2's own processes, not for subscribers
        data=envelope.model_dump_json(exclude={"trace_context"}),
        event=envelope.type,
        id=str(envelope.position),
    )


class EncodedMessages:
    """The SSE messages of the latest events, encoded once for every connection.

    One per application (``Streams.messages``), keyed by log position: positions
    are unique in the application's log, so the live event and its replay from
    the log share one encoding, and two applications in one process share nothing.
    """

    def __init__(self, keep: int = 512) -> None:
        self.keep = keep
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def __call__(self, envelope: Envelope) -> bytes:
        position = envelope.position
        if position is None:
            return event_message(envelope)
        hit = self._cache.get(position)
        if hit is not None:
            return hit
        message = self._cache[position] = event_message(envelope)
        if len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return message

    def clear(self) -> None:
        """Forget every encoding: the log went back, and its positions will be reused."""
        self._cache.clear()
