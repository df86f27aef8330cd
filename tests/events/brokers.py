"""Real RabbitMQ and Redis brokers for tests: unique queue names, cleaned up afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import pika
import redis

from crm2_core.testing import TEST_JWT_SECRET, stop_process

RABBITMQ_URL = os.environ.get("CRM2_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("CRM2_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER = Path(__file__).parent / "worker_main.py"


def broker_url(kind: str) -> str:
    return RABBITMQ_URL if kind == "amqp" else REDIS_URL


def cleanup(kind: str, prefix: str, plugins: tuple[str, ...] = ("probe",)) -> None:
    if kind == "amqp":
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        try:
            channel = connection.channel()
            for plugin in plugins:
                for suffix in ("", ".DQ", ".XQ"):
                    channel.queue_delete(queue=f"{prefix}.{plugin}{suffix}")
        finally:
            connection.close()
    else:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}-dramatiq*", count=500))
        if keys:
            client.delete(*keys)
        client.close()


def ready_messages(queue: str) -> int:
    """Messages waiting in a RabbitMQ queue (not counting those a consumer holds)."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        declared = connection.channel().queue_declare(queue=queue, passive=True)
        return int(declared.method.message_count)
    except pika.exceptions.ChannelClosedByBroker:
        return -1  # not declared yet: nothing was published to it
    finally:
        if connection.is_open:
            connection.close()


@asynccontextmanager
async def worker_process(
    database_url: str,
    kind: str,
    prefix: str,
    failures: int = 0,
    slow_seconds: float = 0.0,
    url: str | None = None,
    max_retries: int = 2,
    watch: bool = False,
    stderr: IO[bytes] | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A worker process for the test's queues; its log goes to this test's captured
    output (shown when the test fails) or to ``stderr``, and it is stopped on the way out."""
    env = {
        **os.environ,
        "CRM2_ENV": "test",
        "CRM2_DATABASE_URL": database_url,
        "CRM2_BROKER_URL": url or broker_url(kind),
        "CRM2_BROKER_QUEUE_PREFIX": prefix,
        "CRM2_PLUGINS": "probe",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_RELAY_INTERVAL_SECONDS": "0.2",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        str(failures),
        str(slow_seconds),
        str(max_retries),
        "watch" if watch else "",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        yield process
    except BaseException:
        await stop_process(process)
        raise
    # a worker deployed under a process manager gets SIGTERM, then SIGKILL after a grace
    # period: it must be gone long before that
    assert await stop_process(process), "the worker did not stop within 30 s of SIGTERM"


def unique_prefix() -> str:
    return f"crm2test_{uuid.uuid4().hex[:10]}"
