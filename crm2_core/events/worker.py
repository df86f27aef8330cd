"""``crm2 worker``: run the enabled plugins' handlers from the RabbitMQ or Redis broker.

Each process builds the same context as ``crm2 serve`` (so the dramatiq broker
is set and the actors declared before anything else), calls the plugins'
``crm2_worker_boot`` hooks, then runs a dramatiq ``Worker``. A relay runs in
the worker too, on dramatiq's event-loop thread, so events that handlers
publish leave promptly.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from crm2_core.errors import ConfigurationError

if TYPE_CHECKING:
    from crm2_core.context import AppContext
    from crm2_core.events.dramatiq_broker import DramatiqBroker


log = logging.getLogger(__name__)
METRICS_PORT_VARIABLE = "CRM2_METRICS_WORKER_PORT"
WAKE_SECONDS = 0.1  # how soon the main thread notices a stop


def _broker(context: AppContext) -> DramatiqBroker:
    """The broker a worker consumes from; the in-process one has no queues to consume."""
    from crm2_core.events.dramatiq_broker import DramatiqBroker

    broker = context.events.broker
    if not isinstance(broker, DramatiqBroker):
        raise ConfigurationError(
            "crm2 worker needs CRM2_BROKER_URL=amqp://… or redis://…; with memory:// the "
            "handlers already run inside crm2 serve"
        )
    return broker


def worker_queues(context: AppContext, plugins: Sequence[str] = ()) -> list[str]:
    """The queues to consume: every plugin's with handlers, or only ``plugins``' ones.

    :raises ConfigurationError: the in-process broker (nothing to consume), or a
        ``plugins`` name without handlers.
    """
    broker = _broker(context)  # checked first: --processes N asks this before anything
    bus = context.events
    with_handlers = bus.handlers.plugins
    unknown = [p for p in plugins if p not in with_handlers]
    if unknown:
        raise ConfigurationError(
            f"--plugin {', '.join(unknown)}: no enabled plugin of that name has event "
            f"handlers (plugins with a queue: {', '.join(with_handlers) or 'none'})"
        )
    return sorted(broker.queue_name(p) for p in (plugins or with_handlers))


def run_worker(
    context: AppContext,
    threads: int,
    stop: threading.Event | None = None,
    plugins: Sequence[str] = (),
) -> None:
    """Serve handler messages until SIGINT/SIGTERM (or ``stop`` is set).

    ``plugins``: consume only these plugins' queues (a Deployment per queue scales
    one plugin's handlers apart from the others'); empty = every queue.
    """
    queues = worker_queues(context, plugins)  # refuses the in-process broker
    broker = _broker(context)
    bus = context.events
    # a subject lane's waiting run holds its thread: half of them at most
    broker.lanes.waiters = max(1, threads // 2)
    stop = stop or threading.Event()
    signalled: list[int] = []
    if threading.current_thread() is threading.main_thread():
        # The handler only appends: Event.set() there could deadlock on the lock the
        # interrupted main thread may hold inside Event.wait().
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: signalled.append(signum))
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    def stopping() -> bool:
        return bool(signalled) or stop.is_set()

    worker = dramatiq.Worker(
        broker.broker,
        queues=set(queues) if plugins else None,
        worker_threads=threads,
        worker_timeout=100,
    )
    worker.start()
    loop_thread = get_event_loop_thread()
    assert loop_thread is not None, "the AsyncIO middleware starts the event loop thread"

    async def boot() -> None:
        await context.plugins.acall("crm2_worker_boot", context=context)
        await bus.start(relay=True)

    # Boot (the catch-up waits for the relay lock and the broker) runs while the main
    # thread watches for a signal: a SIGTERM during boot stops the worker too.
    booting = asyncio.run_coroutine_threadsafe(boot(), loop_thread.loop)
    try:
        _wait_until(lambda: booting.done() or stopping())
        if booting.done():
            booting.result()
            log.info("crm2 worker ready: queues %s", ", ".join(queues) or "(no handlers)")
            _wait_until(stopping)
    finally:
        log.info("crm2 worker stopping")
        booting.cancel()
        worker.stop()
        loop_thread = get_event_loop_thread()
        if loop_thread is not None and loop_thread.loop.is_running():
            asyncio.run_coroutine_threadsafe(_close(context), loop_thread.loop).result(30)


def _wait_until(done: Callable[[], bool]) -> None:
    """Sleep in short steps until ``done()``; a signal's handler runs between them."""
    while not done():
        time.sleep(WAKE_SECONDS)


async def _close(context: AppContext) -> None:
    await context.events.close()
    await context.aclose()


def _child(threads: int, index: int, plugins: Sequence[str]) -> None:
    from crm2_core.bootstrap import build_app_context
    from crm2_core.observability.logs import configure_from_environment
    from crm2_core.settings import load_settings

    configure_from_environment()
    base_port = int(os.environ.get(METRICS_PORT_VARIABLE) or 0)
    if base_port:  # each child its own metrics port: the base port, the next one, …
        os.environ[METRICS_PORT_VARIABLE] = str(base_port + index)
    run_worker(build_app_context(load_settings()), threads, plugins=plugins)


def run_processes(processes: int, threads: int, plugins: Sequence[str] = ()) -> None:
    """``--processes N``: N spawned children, each a whole worker; signals stop them all."""
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(target=_child, args=(threads, i, tuple(plugins)), name=f"crm2-worker-{i}")
        for i in range(processes)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                child.terminate()

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for child in children:
        child.join()
