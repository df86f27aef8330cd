"""The streams tests' helpers around the testing kit's live-SSE tools (crm2_core.testing.sse)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.sse import EventStream, Message, RunningServer, start_server

__all__ = [
    "EventStream",
    "Message",
    "RunningServer",
    "event_ids",
    "post_item",
    "report",
    "start_server",
    "wait_for",
]


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def post_item(app: Crm2TestApp, headers: dict[str, str], n: int) -> uuid.UUID:
    response = await app.client.post("/api/v1/probe/items", json={"n": n}, headers=headers)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["event_id"])


def event_ids(received: list[Message]) -> list[uuid.UUID]:
    return [uuid.UUID(m.json()["id"]) for m in received if m.event == "probe.item.created"]


def report(name: str, sent: list[uuid.UUID], received: list[uuid.UUID]) -> tuple[int, int]:
    """Print the figures; return ``(lost, duplicates)``."""
    lost = len(set(sent) - set(received))
    duplicates = len(received) - len(set(received))
    print(
        f"\n[{name}] sent={len(sent)} received={len(received)} lost={lost} duplicates={duplicates}"
    )
    return lost, duplicates
