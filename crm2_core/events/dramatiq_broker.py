"""RabbitMQ (``amqp://``) and Redis (``redis://``) brokers through dramatiq.

Plugins never declare actors: the core builds one actor, on one queue, per
plugin that has handlers (``<prefix>.<plugin>``), after the dramatiq broker is
set, so ``get_broker()`` never conjures a default one. A message names the
handler and carries the envelope. Retries and backoff are dramatiq's; after the
handler's last retry the actor stores a dead letter itself and acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.middleware import AsyncIO, CurrentMessage

from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import (
    HandlerRegistry,
    RegisteredHandler,
    apply_or_dead_letter,
    register_cursors,
)

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)


def make_dramatiq_broker(url: str, queue_prefix: str) -> dramatiq.Broker:
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Publisher confirms: a broker restart must not lose what we were told was sent.
        broker: dramatiq.Broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif url.startswith(("redis://", "rediss://")):
        from crm2_core.events.redis_doorbell import DoorbellRedisBroker

        broker = DoorbellRedisBroker(url=url, namespace=f"{queue_prefix}-dramatiq")
    else:
        raise ValueError(f"unsupported broker URL {url!r}")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    return broker


class DramatiqBroker:
    def __init__(
        self, context: AppContext, handlers: HandlerRegistry, url: str, queue_prefix: str
    ) -> None:
        self.context = context
        self.handlers = handlers
        self.queue_prefix = queue_prefix
        self.broker = make_dramatiq_broker(url, queue_prefix)
        dramatiq.set_broker(self.broker)
        self.actors = {plugin: self._declare(plugin) for plugin in handlers.plugins}
        # pika is not thread-safe and dramatiq keeps a connection per thread:
        # one sender thread means one connection, and confirms in send order.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm2-broker")

    def queue_name(self, plugin: str) -> str:
        return f"{self.queue_prefix}.{plugin}"

    def _declare(self, plugin: str) -> dramatiq.Actor[Any, Any]:
        context, handlers = self.context, self.handlers

        async def run_handler(handler_id: str, envelope: dict[str, Any]) -> None:
            handler = handlers.get(handler_id)
            if handler is None:
                log.warning("no handler %s in this worker (plugin disabled?); dropping", handler_id)
                return
            message = CurrentMessage.get_current_message()
            attempt = int(message.options.get("retries", 0)) if message else 0
            await apply_or_dead_letter(context, handler, Envelope.model_validate(envelope), attempt)

        # dramatiq's overloads do not cover an async function with these options
        return dramatiq.actor(  # type: ignore[call-overload,no-any-return]
            run_handler,
            actor_name=self.queue_name(plugin),
            queue_name=self.queue_name(plugin),
            broker=self.broker,
            max_retries=20,
        )

    async def start(self) -> None:
        await register_cursors(self.context, self.handlers)

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

    async def deliver(self, events: Sequence[Envelope]) -> None:
        await self._send(
            [
                self._message(handler, event)
                for event in events
                for handler in self.handlers.for_event(event.type)
            ]
        )

    async def deliver_to(self, handler: RegisteredHandler, event: Envelope) -> None:
        """One event to one handler (a dead letter being replayed)."""
        await self._send([self._message(handler, event)])

    def _enqueue_all(self, messages: list[dramatiq.Message[Any]]) -> None:
        ring_once = getattr(self.broker, "ring_once", None)  # Redis: one wake-up per batch
        with ring_once() if ring_once is not None else contextlib.nullcontext():
            for message in messages:
                self.broker.enqueue(message)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._sender, self.broker.close)
        self._sender.shutdown(wait=True)
