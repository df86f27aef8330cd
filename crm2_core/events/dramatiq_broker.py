"""RabbitMQ (``amqp://``) and Redis (``redis://``) brokers through dramatiq.

Plugins never declare actors: the core builds one actor, on one queue, per
plugin that has handlers (``<prefix>.<plugin>``), after the dramatiq broker is
set, so ``get_broker()`` never conjures a default one. A message names the
handler and carries the envelope. Failures are retried by dramatiq (its ``retries``
option counts them against the handler's ``max_retries``); after the handler's last
retry the actor stores a dead letter itself and acks. A wait (``waits.Waiting``: an
earlier event of the subject is pending) is no failure: the actor sends the message
again itself, delayed by ``waits.wait_seconds``, with its ``waits`` option counted
up and ``retries`` untouched, and acks this one.

Catch-up: events relayed while a plugin was switched off (left out of
``CRM2_PLUGINS`` in the processes that relay) never reached its queue. Each
handler's cursor records how far its queue was fed (``delivered_through``, kept
by the relay); when a process starts with the handler, :meth:`DramatiqBroker.catch_up`
sends every event after that mark which the handler has neither applied nor
dead-lettered, in log order, then moves the mark to the end of the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.middleware import AsyncIO, CurrentMessage
from sqlalchemy import and_, exists, func, select
from sqlmodel import col

from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import (
    HandlerRegistry,
    Pairs,
    RegisteredHandler,
    apply_or_dead_letter,
    register_cursors,
)
from crm2_core.events.lanes import SubjectLanes
from crm2_core.events.models import AppliedEvent, DeadLetter, EventRecord, HandlerCursor
from crm2_core.events.relay import hold_lock
from crm2_core.events.waits import Waiting, note_wait, wait_seconds

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)
CATCH_UP_PAGE = 1000


def make_dramatiq_broker(url: str, queue_prefix: str) -> dramatiq.Broker:
    if url.startswith(("amqp://", "amqps://")):
        from crm2_core.events.rabbitmq_batch import BatchingRabbitmqBroker

        # Publisher confirms (a relay batch: a transaction, see rabbitmq_batch): a broker
        # restart must not lose what we were told was sent.
        broker: dramatiq.Broker = BatchingRabbitmqBroker(url=url, confirm_delivery=True)
    elif url.startswith(("redis://", "rediss://")):
        from crm2_core.events.redis_doorbell import DoorbellRedisBroker

        broker = DoorbellRedisBroker(url=url, namespace=f"{queue_prefix}-dramatiq")
    else:
        raise ValueError(f"unsupported broker URL {url!r}")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    return broker


class DramatiqBroker:
    external = True  # the relay keeps each handler's delivered_through (see catch_up)

    def __init__(
        self, context: AppContext, handlers: HandlerRegistry, url: str, queue_prefix: str
    ) -> None:
        self.context = context
        self.handlers = handlers
        self.queue_prefix = queue_prefix
        self.broker = make_dramatiq_broker(url, queue_prefix)
        dramatiq.set_broker(self.broker)
        # the worker's threads run their handlers on one loop: a subject's events in order
        # (run_worker lets half its threads wait in a lane)
        self.lanes = SubjectLanes()
        self.actors = {plugin: self._declare(plugin) for plugin in handlers.plugins}
        # pika is not thread-safe and dramatiq keeps a connection per thread:
        # one sender thread means one connection, and confirms in send order.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm2-broker")
        self._closed = False

    def queue_name(self, plugin: str) -> str:
        return f"{self.queue_prefix}.{plugin}"

    def _declare(self, plugin: str) -> dramatiq.Actor[Any, Any]:
        context, handlers, lanes = self.context, self.handlers, self.lanes

        async def run_handler(handler_id: str, envelope: dict[str, Any]) -> None:
            handler = handlers.get(handler_id)
            if handler is None:
                log.warning("no handler %s in this worker (plugin disabled?); dropping", handler_id)
                return
            message = CurrentMessage.get_current_message()
            options = message.options if message is not None else {}
            failures = int(options.get("retries", 0))
            event = Envelope.model_validate(envelope)
            try:
                async with lanes.turn(
                    handler_id, event.subject, event.position or 0, handler.spec.time_limit_seconds
                ):
                    await apply_or_dead_letter(context, handler, event, failures)
            except Waiting:
                if message is None:
                    raise
                waits = int(options.get("waits", 0))
                note_wait(handler_id, envelope.get("id"), waits + 1)
                await self._wait_again(message, waits + 1, wait_seconds(handler.spec, waits))

        # dramatiq's overloads do not cover an async function with these options
        return dramatiq.actor(  # type: ignore[call-overload,no-any-return]
            run_handler,
            actor_name=self.queue_name(plugin),
            queue_name=self.queue_name(plugin),
            broker=self.broker,
            max_retries=20,
        )

    async def _wait_again(self, message: Any, waits: int, delay_seconds: float) -> None:
        """Send ``message`` again after ``delay_seconds``, its waits counted (not its failures)."""
        again = message.copy(options={"waits": waits})
        delay_ms = max(1, int(delay_seconds * 1000))
        await asyncio.get_running_loop().run_in_executor(
            self._sender, lambda: self.broker.enqueue(again, delay=delay_ms)
        )

    async def start(self) -> None:
        await register_cursors(self.context, self.handlers)
        await self.catch_up()

    async def catch_up(self) -> int:
        """Send each handler the events it missed while its plugin was off; how many.

        Runs under the relay lock, so no relay moves the marks meanwhile; two
        processes starting together send the gap once. An event already waiting in
        the queue may be sent again (the mark was behind it): the handler's
        applied-event record makes the second delivery a no-op.
        """
        sent = 0
        async with self.context.session_factory() as session:
            await hold_lock(session)
            top = (await session.execute(select(func.max(col(EventRecord.position))))).scalar() or 0
            ids = list(self.handlers.handlers)
            cursors = {
                c.handler: c
                for c in (
                    await session.execute(
                        select(HandlerCursor).where(col(HandlerCursor.handler).in_(ids))
                    )
                ).scalars()
            }
            for handler in self.handlers.handlers.values():
                cursor = cursors.get(handler.id)
                if cursor is None:
                    continue
                since = cursor.delivered_through
                if since is None:
                    since = cursor.start_position
                while since < top:
                    missed = await _missed(session, handler, since, top)
                    if not missed:
                        break
                    await self._send([self._message(handler, event) for event in missed])
                    sent += len(missed)
                    since = missed[-1].position or top
                cursor.delivered_through = top
            await session.commit()
        if sent:
            log.info("caught up: sent %d event(s) relayed while their handlers were off", sent)
        return sent

    def _message(self, handler: RegisteredHandler, event: Envelope) -> dramatiq.Message[Any]:
        spec = handler.spec
        return self.actors[handler.plugin].message_with_options(
            args=(handler.id, event.model_dump(mode="json")),
            max_retries=spec.max_retries,
            min_backoff=int(spec.min_backoff_seconds * 1000),
            max_backoff=int(spec.max_backoff_seconds * 1000),
        )

    async def _send(self, messages: list[dramatiq.Message[Any]]) -> None:
        if messages:
            await asyncio.get_running_loop().run_in_executor(
                self._sender, self._enqueue_all, messages
            )

    async def deliver(self, events: Sequence[Envelope], to: Pairs | None = None) -> None:
        """Send each event to each of its handlers (those ``to`` accepts), in one batch."""
        await self._send(
            [
                self._message(handler, event)
                for event in events
                for handler in self.handlers.for_event(event.type)
                if to is None or to(handler, event)
            ]
        )

    async def deliver_to(self, handler: RegisteredHandler, event: Envelope) -> None:
        """One event to one handler (a dead letter being replayed)."""
        await self._send([self._message(handler, event)])

    def _enqueue_all(self, messages: list[dramatiq.Message[Any]]) -> None:
        # one round trip for the batch, not one per message (both brokers are ours)
        self.broker.enqueue_batch(messages)  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self._closed:  # the bus may be closed again (a test, then the app's shutdown)
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._sender, self.broker.close)
        self._sender.shutdown(wait=True)


async def _missed(session: Any, handler: RegisteredHandler, since: int, top: int) -> list[Envelope]:
    """One page of relayed events in ``(since, top]`` the handler has neither applied nor
    dead-lettered, in log order."""
    stmt = (
        select(EventRecord)
        .where(
            col(EventRecord.type).in_(handler.spec.event_types),
            col(EventRecord.position) > since,
            col(EventRecord.position) <= top,
            ~exists().where(
                and_(
                    col(AppliedEvent.handler) == handler.id,
                    col(AppliedEvent.event_id) == col(EventRecord.id),
                )
            ),
            ~exists().where(
                and_(
                    col(DeadLetter.handler) == handler.id,
                    col(DeadLetter.event_id) == col(EventRecord.id),
                    col(DeadLetter.retried_at).is_(None),
                )
            ),
        )
        .order_by(col(EventRecord.position))
        .limit(CATCH_UP_PAGE)
    )
    return [Envelope.from_record(r) for r in (await session.execute(stmt)).scalars()]
