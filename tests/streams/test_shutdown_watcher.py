"""The streams' shutdown watcher reads the server it is bound to, never a signal handler."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from crm2_core.streams.response import ShutdownWatcher


async def _watch(stopping: Callable[[], Callable[[], bool] | None], wait: float) -> list[str]:
    closed: list[str] = []

    async def on_exit() -> None:
        closed.append("closed")

    watcher = ShutdownWatcher(on_exit, stopping, poll_seconds=0.01)
    watcher.start()
    await asyncio.sleep(wait)
    await watcher.close()
    return closed


async def test_streams_close_when_the_bound_server_starts_stopping() -> None:
    flags = {"should_exit": False}
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, flags.update, {"should_exit": True})

    assert await _watch(lambda: lambda: flags["should_exit"], 0.3) == ["closed"]


async def test_a_server_bound_after_the_streams_started_is_seen() -> None:
    bound: list[Callable[[], bool]] = []
    asyncio.get_running_loop().call_later(0.05, bound.append, lambda: True)

    assert await _watch(lambda: bound[0] if bound else None, 0.3) == ["closed"]


async def test_without_a_bound_server_a_foreign_sigterm_handler_is_ignored() -> None:
    class Server:  # what the old code found through signal.getsignal(SIGTERM).__self__
        should_exit = True

        def handle_exit(self, *_: object) -> None: ...

    previous = signal.signal(signal.SIGTERM, Server().handle_exit)
    try:
        assert await _watch(lambda: None, 0.1) == []
    finally:
        signal.signal(signal.SIGTERM, previous)
