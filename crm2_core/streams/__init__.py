"""Live SSE streams of the event log: ``GET /api/v1/streams/{channel}`` (see docs/streams.md).

Plugins declare channels through ``crm2_sse_channels``; each connection gets
the channel's events it may see, resumes from the durable log with
``Last-Event-ID``, and is fed by a per-process hub (through Redis pub/sub
when ``CRM2_REDIS_URL`` is set, so that every ``crm2 serve`` process sees
every event).
"""

from __future__ import annotations

from crm2_core.streams.service import Streams, attach_publisher

__all__ = ["Streams", "attach_publisher"]
