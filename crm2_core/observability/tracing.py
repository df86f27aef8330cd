"""OpenTelemetry traces of one application context (``crm2-core[tracing]``).

One ``TracerProvider`` per context (never the global one: two apps in a process
must not share exporters). The trace runs:

    HTTP request (SERVER span) ──publish──▶ event row (trace_context column)
      └─ relay (PRODUCER span per event, when it hands the event to the broker)
           └─ handler run (CONSUMER span, in whichever process runs it)

The envelope carries the W3C ``traceparent`` of the latest step, so the chain
holds across processes and brokers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from crm2_core.context import TRACING, AppContext
from crm2_core.observability.config import TracingSettings
from crm2_core.observability.propagation import current_traceparent

PROPAGATOR = TraceContextTextMapPropagator()


def _parent(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return PROPAGATOR.extract({"traceparent": traceparent})


class Tracing:
    """Kept on the context (``context.find(TRACING)``) when ``CRM2_TRACING_ENABLED`` is true."""

    def __init__(self, settings: TracingSettings) -> None:
        from crm2_core import __version__

        resource = Resource.create(
            {"service.name": settings.service_name, "service.version": __version__}
        )
        self.provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
        )
        self.memory: InMemorySpanExporter | None = None
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, timeout=5)
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        else:
            self.memory = InMemorySpanExporter()
            self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("crm2")

    # -- HTTP ------------------------------------------------------------------------------

    def request_span(self, scope: Any) -> contextlib.AbstractContextManager[Any]:
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        parent = PROPAGATOR.extract(headers) if "traceparent" in headers else None
        return self.tracer.start_as_current_span(
            f"{scope['method']} {scope.get('path', '')}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
            end_on_exit=True,
        )

    def finish_request_span(self, span: Any, scope: Any, route: str, status: int) -> None:
        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            span.set_attribute("crm2.request_id", request_id)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    # -- relay -----------------------------------------------------------------------------

    def producer_envelopes(self, events: Sequence[Any]) -> list[Any]:
        """The relay's batch as the broker gets it: a PRODUCER span per traced event,
        whose context the delivered envelope carries on to the handlers."""
        traced = []
        for event in events:
            parent = _parent(event.trace_context)
            if parent is None:
                traced.append(event)
                continue
            with self.tracer.start_as_current_span(
                f"relay {event.type}",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.operation.type": "publish",
                    "crm2.event.id": str(event.id),
                    "crm2.event.type": event.type,
                    "crm2.event.position": event.position or 0,
                },
            ):
                traced.append(event.model_copy(update={"trace_context": current_traceparent()}))
        return traced

    # -- handlers --------------------------------------------------------------------------

    @contextlib.contextmanager
    def handler_span(self, handler_id: str, event: Any, attempt: int) -> Iterator[Any]:
        with self.tracer.start_as_current_span(
            f"handle {handler_id}",
            context=_parent(event.trace_context),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.operation.type": "process",
                "crm2.handler": handler_id,
                "crm2.event.id": str(event.id),
                "crm2.event.type": event.type,
                "crm2.attempt": attempt + 1,
            },
        ) as span:
            yield span

    @contextlib.contextmanager
    def handler_batch_span(self, handler_id: str, events: Sequence[Any]) -> Iterator[Any]:
        """One CONSUMER span for a batch (``handle_batch``), linked to each traced event."""
        links = []
        for event in events:
            parent = _parent(event.trace_context)
            if parent is not None:
                span_context = trace.get_current_span(parent).get_span_context()
                links.append(trace.Link(span_context))
        with self.tracer.start_as_current_span(
            f"handle {handler_id}",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(events),
                "crm2.handler": handler_id,
            },
        ) as span:
            yield span

    def finished_spans(self) -> list[Any]:
        """Spans kept in memory (no OTLP endpoint set): what the tests read."""
        return list(self.memory.get_finished_spans()) if self.memory is not None else []

    def shutdown(self) -> None:
        self.provider.shutdown()


def tracing_of(context: Any) -> Tracing | None:
    """The application's tracing, or ``None`` (off, or not a crm2 application context)."""
    return context.find(TRACING) if isinstance(context, AppContext) else None
