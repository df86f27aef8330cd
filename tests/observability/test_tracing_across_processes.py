"""The trace crosses processes: API (this test) → RabbitMQ → a ``crm2 worker`` subprocess,
both exporting over OTLP/HTTP to a collector on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import probe_plugin
import pytest
from brokers import broker_url, cleanup, unique_prefix, worker_process
from helpers import effects, wait_for
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from crm2_core.context import TRACING
from crm2_core.testing import TestDatabase

Span = dict[str, str]


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP traces receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Receive)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        {
                            "service": service,
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                        }
                    )
        with self.server.lock:
            self.server.spans.extend(found)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


async def test_one_trace_from_request_through_rabbitmq_to_the_worker(
    crm2_app_factory,
    crm2_database: TestDatabase,
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if crm2_database.backend != "postgresql":
        pytest.skip("a worker process per backend is slow; PostgreSQL is the scaled-out shape")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export within 0.1 s
    monkeypatch.setenv("CRM2_TRACING_ENABLED", "true")
    monkeypatch.setenv("CRM2_TRACING_OTLP_ENDPOINT", collector.endpoint)
    monkeypatch.setenv("CRM2_TRACING_SERVICE_NAME", "crm2-worker")
    prefix = unique_prefix()
    try:
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,),
            broker_url=broker_url("amqp"),
            broker_queue_prefix=prefix,
            plugin_settings={
                "tracing": {
                    "enabled": True,
                    "otlp_endpoint": collector.endpoint,
                    "service_name": "crm2-api",
                }
            },
        )
        headers = await app.login("agent")
        async with worker_process(crm2_database.url, "amqp", prefix):
            response = await app.client.post("/api/v1/probe/items", json={"n": 7}, headers=headers)
            assert response.status_code == 201

            async def handled() -> bool:
                return await effects(app) == 1

            await wait_for(handled, within=30)

            def by_name(name: str) -> Span | None:
                with collector.lock:
                    return next((s for s in collector.spans if s["name"] == name), None)

            async def exported() -> bool:
                return by_name("handle probe.record") is not None

            await wait_for(exported, within=15)
    finally:
        cleanup("amqp", prefix)
    app.context.get(TRACING).provider.force_flush()

    request = by_name("POST /api/v1/probe/items")
    relay = by_name("relay probe.item.created")
    handler = by_name("handle probe.record")
    assert request and relay and handler, collector.spans
    assert request["service"] == "crm2-api"
    assert handler["service"] == "crm2-worker"  # it ran in the other process
    assert relay["trace_id"] == handler["trace_id"] == request["trace_id"]
    assert relay["parent"] == request["span_id"]
    assert handler["parent"] == relay["span_id"]
