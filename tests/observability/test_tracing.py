"""One trace from the HTTP request through the outbox and the relay to the handler."""

from __future__ import annotations

import probe_plugin

from crm2_core.context import TRACING
from crm2_core.events.models import EventRecord

TRACING_ON = {"tracing": {"enabled": True}}


def spans_by_name(app) -> dict[str, object]:
    tracing = app.context.get(TRACING)
    return {span.name: span for span in tracing.finished_spans()}


async def test_request_relay_and_handler_share_one_trace(crm2_app_factory) -> None:
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=TRACING_ON)
    headers = await app.login("admin")

    created = await app.client.post("/api/v1/probe/items", json={"n": 1}, headers=headers)
    await app.settle_events()

    spans = spans_by_name(app)
    request = spans["POST /api/v1/probe/items"]
    relay = spans["relay probe.item.created"]
    handler = spans["handle probe.record"]
    trace_id = request.context.trace_id
    assert relay.context.trace_id == trace_id
    assert handler.context.trace_id == trace_id
    assert relay.parent.span_id == request.context.span_id
    assert handler.parent.span_id == relay.context.span_id
    assert request.attributes["http.route"] == "/api/v1/probe/items"
    assert request.attributes["http.response.status_code"] == 201
    assert handler.attributes["crm2.event.id"] == created.json()["event_id"]


async def test_an_incoming_traceparent_is_continued(crm2_app_factory) -> None:
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=TRACING_ON)
    headers = await app.login("admin")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"

    await app.client.post(
        "/api/v1/probe/items", json={"n": 2}, headers={**headers, "traceparent": traceparent}
    )
    await app.settle_events()

    spans = spans_by_name(app)
    assert f"{spans['POST /api/v1/probe/items'].context.trace_id:032x}" == trace_id
    assert f"{spans['handle probe.record'].context.trace_id:032x}" == trace_id


async def test_the_event_row_keeps_the_publishing_span(crm2_app_factory) -> None:
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=TRACING_ON)
    headers = await app.login("admin")
    await app.client.post("/api/v1/probe/items", json={"n": 3}, headers=headers)
    await app.settle_events()

    async with app.context.session_factory() as session:
        row = (await session.execute(EventRecord.__table__.select())).mappings().first()
    request = spans_by_name(app)["POST /api/v1/probe/items"]
    version, trace_id, span_id, flags = row["trace_context"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{request.context.trace_id:032x}",
        f"{request.context.span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled


async def test_a_failing_handler_span_records_the_error(crm2_app_factory) -> None:
    probe_plugin.FAILURES["*"] = 1
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), plugin_settings=TRACING_ON)
    headers = await app.login("admin")
    await app.client.post("/api/v1/probe/items", json={"n": 4}, headers=headers)
    await app.settle_events()

    tracing = app.context.get(TRACING)
    runs = [s for s in tracing.finished_spans() if s.name == "handle probe.record"]
    assert [s.status.status_code.name for s in runs] == ["ERROR", "UNSET"]
    assert [s.attributes["crm2.attempt"] for s in runs] == [1, 2]


async def test_without_tracing_events_carry_no_trace_context(crm2_app_factory) -> None:
    app = await crm2_app_factory(extra_plugins=(probe_plugin,))
    headers = await app.login("admin")
    await app.client.post("/api/v1/probe/items", json={"n": 5}, headers=headers)

    assert app.context.find(TRACING) is None
    async with app.context.session_factory() as session:
        row = (await session.execute(EventRecord.__table__.select())).mappings().first()
    assert row["trace_context"] is None
