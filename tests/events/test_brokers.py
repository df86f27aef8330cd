"""A handler registered by a plugin runs for an event committed through the API,
on RabbitMQ and on Redis, in a separate `crm2 worker` process."""

from __future__ import annotations

import uuid

import probe_plugin
import pytest
from brokers import broker_url, cleanup, unique_prefix, worker_process
from helpers import effects, wait_for

from crm2_core.testing import TestDatabase


@pytest.mark.parametrize("kind", ["amqp", "redis"])
async def test_handler_runs_in_worker_for_committed_event(
    kind: str, crm2_app_factory, crm2_database: TestDatabase
) -> None:
    prefix = unique_prefix()
    try:
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url(kind), broker_queue_prefix=prefix
        )
        headers = await app.login("agent")
        with worker_process(crm2_database.url, kind, prefix):
            ids = []
            for n in range(5):
                response = await app.client.post(
                    "/api/v1/probe/items", json={"n": n}, headers=headers
                )
                assert response.status_code == 201
                ids.append(uuid.UUID(response.json()["event_id"]))

            async def all_handled() -> bool:
                return await effects(app) == 5

            await wait_for(all_handled, within=30)
        for event_id in ids:
            assert await effects(app, event_id) == 1
    finally:
        cleanup(kind, prefix)
