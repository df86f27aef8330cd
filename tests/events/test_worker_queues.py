"""``crm2 worker --plugin NAME``: one worker Deployment per plugin queue."""

from __future__ import annotations

import probe_plugin
import pytest

from crm2_core.errors import ConfigurationError
from crm2_core.events.worker import worker_queues
from crm2_core.http.app import build_app_context
from crm2_core.settings import Settings
from crm2_core.testing import TEST_JWT_SECRET


@pytest.fixture
async def context():
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="test",
        database_url="sqlite+aiosqlite:///:memory:",
        plugins="probe",
        broker_url="amqp://guest:guest@127.0.0.1:5672/%2F",
        broker_queue_prefix="qtest",
    )
    built = build_app_context(
        settings,
        extra_plugins=(probe_plugin,),
        plugin_settings={"auth": {"jwt_secret": TEST_JWT_SECRET}},
    )
    yield built
    await built.aclose()


async def test_without_plugin_every_queue_is_consumed(context) -> None:
    assert worker_queues(context) == ["qtest.probe"]


async def test_plugin_names_its_queue(context) -> None:
    assert worker_queues(context, ["probe"]) == ["qtest.probe"]


async def test_a_plugin_without_handlers_is_refused_naming_the_ones_with_queues(context) -> None:
    with pytest.raises(ConfigurationError, match=r"--plugin deals: .*with a queue: probe"):
        worker_queues(context, ["deals"])
