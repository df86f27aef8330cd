"""A deals event travels over the real RabbitMQ broker (127.0.0.1:5672, queue names of this
test's own, deleted afterwards) into a separate ``crm2 worker`` process, whose
notifications handler puts the deal owner's notification in the feed the API serves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from notifications_kit import Notifications

from crm2_core.testing import TEST_JWT_SECRET, TestDatabase, stop_process

RABBITMQ_URL = os.environ.get("CRM2_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
DEALS = "/api/v1/deals"
QUEUES = ("deals", "notifications")


def _delete_queues(prefix: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for plugin in QUEUES:
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(queue=f"{prefix}.{plugin}{suffix}")
    finally:
        connection.close()


@contextlib.asynccontextmanager
async def crm2_worker(database_url: str, prefix: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``crm2 worker`` as deployed (the installed command), on this test's queues; its log
    goes to the test's captured output, shown if the test fails."""
    env = {
        **os.environ,
        "CRM2_ENV": "test",
        "CRM2_DATABASE_URL": database_url,
        "CRM2_BROKER_URL": RABBITMQ_URL,
        "CRM2_BROKER_QUEUE_PREFIX": prefix,
        "CRM2_PLUGINS": "deals,notifications",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_RELAY_INTERVAL_SECONDS": "0.2",
        "CRM2_REDIS_URL": "",
    }
    command = [str(Path(sys.executable).with_name("crm2")), "worker", "--threads", "2"]
    process = await asyncio.create_subprocess_exec(*command, env=env, stdout=subprocess.DEVNULL)
    try:
        yield process
    except BaseException:
        await stop_process(process)
        raise
    assert await stop_process(process), "the worker did not stop within 30 s of SIGTERM"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"crm2test_{uuid.uuid4().hex[:10]}"
    yield name
    _delete_queues(name)


async def test_a_won_deal_reaches_the_feed_over_rabbitmq_and_a_worker(
    crm2_app_factory: Any, crm2_database: TestDatabase, prefix: str
) -> None:
    app = await crm2_app_factory(
        plugins=["deals", "notifications"], broker_url=RABBITMQ_URL, broker_queue_prefix=prefix
    )
    n = Notifications(app)
    admin, owner = await n.users("admin", "agent")
    pipeline = await n.client.post(
        f"{DEALS}/pipelines",
        json={"name": "Sales", "is_default": True, "stages": [
            {"name": "New", "probability": 10},
            {"name": "Won", "probability": 100, "kind": "won"},
        ]},
        headers=admin.headers,
    )  # fmt: skip
    assert pipeline.status_code == 201, pipeline.text
    won = next(s for s in pipeline.json()["stages"] if s["kind"] == "won")
    client = await n.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Anna Berg"}, headers=owner.headers
    )
    deal = await n.client.post(
        f"{DEALS}/deals",
        json={"title": "Fleet cover", "client_id": client.json()["id"], "value": "900.00"},
        headers=owner.headers,
    )
    moved = await n.client.post(
        f"{DEALS}/deals/{deal.json()['id']}/move", json={"stage_id": won["id"]},
        headers=owner.headers,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text

    async with crm2_worker(crm2_database.url, prefix) as worker:
        deadline = time.monotonic() + 60
        while not (feed := await n.feed(owner)):
            assert worker.returncode is None, "crm2 worker exited (its log: captured stderr)"
            assert time.monotonic() < deadline, "no notification within 60 s"
            await asyncio.sleep(0.1)
    (item,) = feed
    assert item["title"] == "Deal won: Fleet cover" and "900" in item["body"]
    assert await n.feed(admin) == []
