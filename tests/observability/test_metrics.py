"""``/metrics``: what it counts, who may read it, and the workers' own endpoint."""

from __future__ import annotations

import re
import socket
import uuid
from dataclasses import replace
from typing import Any

import httpx
import probe_plugin
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crm2_core.context import METRICS_SERVER
from crm2_core.events import publish
from crm2_core.events.handlers import RegisteredHandler, apply_or_dead_letter
from crm2_core.events.models import DeadLetter
from crm2_core.testing.app import Crm2TestApp

METRICS_ON = {"metrics": {"enabled": True}}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


async def scrape(app: Crm2TestApp, **kwargs: Any) -> str:
    response = await app.client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_metrics_are_off_by_default(crm2_app_factory) -> None:
    app = await crm2_app_factory()

    response = await app.client.get("/metrics")

    assert response.status_code == 404


async def test_requests_are_counted_by_route_template_not_raw_path(crm2_app_factory) -> None:
    app = await crm2_app_factory(plugins=["deals"], plugin_settings=METRICS_ON)
    headers = await app.login("admin")
    for _ in range(2):
        await app.client.get(f"/api/v1/deals/deals/{uuid.uuid4()}", headers=headers)
    await app.client.get("/healthz")
    await app.client.get("/no/such/path")

    text = await scrape(app)

    route = "/api/v1/deals/deals/{deal_id}"
    assert value(text, "crm2_http_requests_total", method="GET", route=route, status="404") == 2
    assert value(text, "crm2_http_requests_total", method="GET", route="/healthz", status="200")
    assert value(text, "crm2_http_requests_total", method="GET", route="(unmatched)", status="404")
    assert value(text, "crm2_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert not re.search(r'route="/api/v1/deals/deals/[0-9a-f]{8}-', text)


async def test_from_another_network_a_token_with_metrics_read_is_needed(crm2_app_factory) -> None:
    app = await crm2_app_factory(plugin_settings=METRICS_ON)
    admin = await app.login("admin")
    viewer = await app.login("viewer")
    outside = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.app, client=("10.1.2.3", 40000)),
        base_url="http://crm2.test",
    )
    async with outside:
        anonymous = await outside.get("/metrics")
        refused = await outside.get("/metrics", headers=viewer)
        allowed = await outside.get("/metrics", headers=admin)

    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert "crm2_process_info" in allowed.text


async def test_an_allowed_network_needs_no_token(crm2_app_factory) -> None:
    app = await crm2_app_factory(
        plugin_settings={"metrics": {"enabled": True, "allow_networks": "10.0.0.0/8"}}
    )
    inside = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.app, client=("10.9.9.9", 40000)),
        base_url="http://crm2.test",
    )
    async with inside:
        assert (await inside.get("/metrics")).status_code == 200
    # 127.0.0.1 (the test client) is no longer in the list
    assert (await app.client.get("/metrics")).status_code == 401


async def test_handler_runs_failures_and_dead_letters_by_handler(crm2_app_factory) -> None:
    probe_plugin.FAILURES["*"] = 99  # every attempt fails: 3 failures, then a dead letter
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON)
    headers = await app.login("admin")
    created = await app.client.post("/api/v1/probe/items", json={"n": 1}, headers=headers)
    assert created.status_code == 201
    await app.settle_events()

    text = await scrape(app)

    handler = "probe.record"
    assert value(text, "crm2_handler_runs_total", handler=handler, outcome="failed") == 2
    assert value(text, "crm2_handler_runs_total", handler=handler, outcome="dead_lettered") == 1
    assert value(text, "crm2_dead_letters", handler=handler) == 1
    assert value(text, "crm2_handler_duration_seconds_count", handler=handler) == 3
    assert value(text, "crm2_outbox_backlog") == 0
    assert value(text, "crm2_outbox_relay_lag_seconds") == 0


async def test_applied_events_are_counted(crm2_app_factory) -> None:
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON)
    headers = await app.login("admin")
    for n in range(3):
        await app.client.post("/api/v1/probe/items", json={"n": n}, headers=headers)
    await app.settle_events()

    text = await scrape(app)

    assert value(text, "crm2_handler_runs_total", handler="probe.record", outcome="applied") == 3
    assert value(text, "crm2_dead_letters", handler="probe.record") == 0


async def test_skipped_events_are_counted_apart_from_applied_ones(crm2_app_factory) -> None:
    """A worker's delivery its handler's ``skips`` passes over is recorded by the claim
    alone: counted ``skipped``, not ``applied`` (ops see how much of a handler's traffic
    was nothing to it)."""
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON)
    await app.relay_by_hand()
    async with app.context.session_factory() as session:
        for n in range(2):
            publish(session, probe_plugin.ItemCreated(n=n), subject=f"item-{n}")
        await session.commit()
    skipped, applied = await app.relay_by_hand()
    (registered,) = app.context.events.handlers.for_event("probe.item.created")

    async def nothing_to_it(_session: Any, _event: Any, _context: Any) -> bool:
        return True

    skipping = RegisteredHandler(
        registered.id, registered.plugin, replace(registered.spec, skips=nothing_to_it)
    )
    assert await apply_or_dead_letter(app.context, skipping, skipped, 0) == "skipped"
    assert await apply_or_dead_letter(app.context, registered, applied, 0) == "applied"

    text = await scrape(app)

    assert value(text, "crm2_handler_runs_total", handler=registered.id, outcome="skipped") == 1
    assert value(text, "crm2_handler_runs_total", handler=registered.id, outcome="applied") == 1


async def test_waiting_dead_letters_are_read_from_the_database(crm2_app_factory) -> None:
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON)
    async with app.context.session_factory() as session:
        for _ in range(2):
            session.add(
                DeadLetter(
                    handler="probe.record",
                    event_id=uuid.uuid4(),
                    position=1,
                    attempts=3,
                    error="boom",
                    traceback="",
                )
            )
        await session.commit()

    assert value(await scrape(app), "crm2_dead_letters", handler="probe.record") == 2


async def test_rate_limit_rejections_are_counted(crm2_app_factory) -> None:
    app = await crm2_app_factory(
        plugin_settings=METRICS_ON, rate_limit_per_minute=1, rate_limit_burst=1
    )
    statuses = [(await app.client.get("/api/v1/plugins")).status_code for _ in range(3)]
    assert statuses.count(429) == 2, statuses

    assert value(await scrape(app), "crm2_rate_limit_rejections_total") == 2


async def test_pool_and_sse_gauges_are_present(crm2_app_factory) -> None:
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON)

    text = await scrape(app)

    assert value(text, "crm2_sse_connections", channel="probe") == 0
    assert value(text, "crm2_process_info", role="api", version=_version()) == 1
    if app.context.settings.database_url.startswith("postgresql"):
        assert value(text, "crm2_db_pool_connections", state="size") == 10


def _version() -> str:
    from crm2_core import __version__

    return __version__


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_worker_serves_its_metrics_on_its_own_port(crm2_app_factory) -> None:
    from crm2_core.observability.metrics import metrics_of
    from crm2_core.observability.worker import serve_worker_metrics

    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=METRICS_ON)
    metrics = metrics_of(app.context)
    assert metrics is not None
    metrics.handler_runs.labels("probe.record", "applied").inc()
    port = _free_port()
    serve_worker_metrics(app.context, metrics, "127.0.0.1", port)
    server = app.context.get(METRICS_SERVER)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        server.shutdown()
        server.server_close()

    text = response.text
    assert value(text, "crm2_process_info", role="worker", version=_version()) == 1
    assert value(text, "crm2_handler_runs_total", handler="probe.record", outcome="applied") == 1


def test_metrics_on_without_the_extra_is_a_clear_configuration_error(monkeypatch) -> None:
    import importlib.util

    from crm2_core.errors import ConfigurationError
    from crm2_core.observability.extras import require_extra

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "prometheus_client" else real(name, *a),
    )
    with pytest.raises(ConfigurationError, match=r"pip install 'crm2-core\[metrics\]'"):
        require_extra("prometheus_client", "metrics", "CRM2_METRICS_ENABLED")
