"""The per-process hub: order, holes read back from the log, bounded buffers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from crm2_core.events.envelope import SYSTEM, Envelope
from crm2_core.streams.hub import MAX_BACKFILL, OVERFLOW, RESYNC, Hub, LogSource, Subscription
from crm2_hookspecs import SseChannel

CHANNEL = SseChannel("probe", ("probe.*",), "probe:read")


def envelope(position: int, event_type: str = "probe.item.created") -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        type=event_type,
        version=1,
        occurred_at=datetime.now(UTC),
        actor=SYSTEM,
        subject="s",
        data={"n": position},
        position=position,
    )


class FakeLog:
    """The committed log as the hub reads it."""

    def __init__(self, top: int = 0) -> None:
        self.events = [envelope(p) for p in range(1, top + 1)]
        self.reads = 0

    def source(self) -> LogSource:
        async def top() -> int:
            return self.events[-1].position or 0 if self.events else 0

        async def read(after: int, limit: int, types: object = None) -> list[Envelope]:
            self.reads += 1
            return [e for e in self.events if (e.position or 0) > after][:limit]

        return LogSource(top=top, read=read)


async def drain(subscription: Subscription) -> list[int]:
    positions: list[int] = []
    while (item := await subscription.next(wait_seconds=0)) is not None:
        positions.append(item.position or 0)
    return positions


async def test_hub_reads_a_hole_back_from_the_log_before_newer_events() -> None:
    log = FakeLog(top=10)
    hub = Hub(log.source(), poll_seconds=60)
    await hub.ready()
    subscription, mark = hub.subscribe(CHANNEL, limit=100)
    assert mark == 10
    log.events += [envelope(p) for p in range(11, 16)]  # 11-13 relayed by another process
    await hub.publish(log.events[13:])  # 14, 15
    assert await drain(subscription) == [11, 12, 13, 14, 15]


async def test_hub_skips_positions_it_already_dispatched() -> None:
    hub = Hub(FakeLog().source(), poll_seconds=60)
    await hub.ready()
    subscription, _ = hub.subscribe(CHANNEL, limit=100)
    batch = [envelope(1), envelope(2)]
    await hub.publish(batch)
    await hub.publish(batch)  # the same batch again (pub/sub and the log poll both had it)
    assert await drain(subscription) == [1, 2]


async def test_catch_up_dispatches_events_relayed_elsewhere() -> None:
    log = FakeLog(top=3)
    hub = Hub(log.source(), poll_seconds=60)
    await hub.ready()
    subscription, _ = hub.subscribe(CHANNEL, limit=100)
    log.events += [envelope(4), envelope(5)]
    await hub.catch_up()
    assert await drain(subscription) == [4, 5]


async def test_overflowing_subscription_is_closed_and_the_others_keep_receiving() -> None:
    hub = Hub(FakeLog().source(), poll_seconds=60)
    await hub.ready()
    slow, _ = hub.subscribe(CHANNEL, limit=3)
    fast, _ = hub.subscribe(CHANNEL, limit=3)
    received = []
    for position in range(1, 6):
        await hub.publish([envelope(position)])
        received += await drain(fast)
    assert received == [1, 2, 3, 4, 5]
    assert slow.closed == OVERFLOW and await slow.next(wait_seconds=0) is None
    assert hub.subscriptions == 1


async def test_a_batch_larger_than_the_limit_fits_an_empty_buffer() -> None:
    hub = Hub(FakeLog().source(), poll_seconds=60)
    await hub.ready()
    subscription, _ = hub.subscribe(CHANNEL, limit=2)
    await hub.publish([envelope(p) for p in range(1, 6)])
    assert subscription.closed is None
    assert await drain(subscription) == [1, 2, 3, 4, 5]


async def test_hub_only_hands_a_subscription_its_channel_events() -> None:
    hub = Hub(FakeLog().source(), poll_seconds=60)
    await hub.ready()
    subscription, _ = hub.subscribe(CHANNEL, limit=10)
    await hub.publish([envelope(1, "deals.deal.won"), envelope(2), envelope(3, "x.y.z")])
    assert await drain(subscription) == [2]


async def test_a_hole_too_large_to_read_back_closes_subscriptions_to_resync() -> None:
    log = FakeLog()
    hub = Hub(log.source(), poll_seconds=60)
    await hub.ready()
    subscription, _ = hub.subscribe(CHANNEL, limit=10)
    await hub.publish([envelope(MAX_BACKFILL + 5)])
    assert subscription.closed == RESYNC and log.reads == 0
    late, mark = hub.subscribe(CHANNEL, limit=10)
    assert mark == MAX_BACKFILL + 4 and late.closed is None
