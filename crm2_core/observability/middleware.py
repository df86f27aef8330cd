"""The outermost layer inside the request id: log fields, request metrics, the request's span.

It sits outside Starlette's ``ServerErrorMiddleware`` (see ``Crm2App``), so a
500 is counted and its log lines carry the request id too.
"""

from __future__ import annotations

import time
from typing import Any

from crm2_core.context import TRACING
from crm2_core.http.middleware import ASGIApp, Message, Receive, Scope, Send
from crm2_core.observability.logs import bind_request, unbind_request
from crm2_core.observability.metrics import metrics_of

UNMATCHED = "(unmatched)"


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/deals/deals/{deal_id}``), never the raw path:
    one label value per route, whatever ids clients send."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, context: Any) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id") or ""
        tokens = bind_request(scope, request_id)
        metrics = metrics_of(self.context)
        tracer = self.context.find(TRACING)
        try:
            if metrics is None and tracer is None:
                await self.app(scope, receive, send)
                return
            await self._observed(scope, receive, send, metrics, tracer)
        finally:
            unbind_request(tokens)

    async def _observed(
        self, scope: Scope, receive: Receive, send: Send, metrics: Any, tracer: Any
    ) -> None:
        started = time.perf_counter()
        status = 500
        span_cm = tracer.request_span(scope) if tracer is not None else None
        span = span_cm.__enter__() if span_cm is not None else None

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = route_template(scope)
            if metrics is not None:
                method = scope["method"]
                metrics.http_requests.labels(method, route, str(status)).inc()
                metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)
            if span_cm is not None:
                tracer.finish_request_span(span, scope, route, status)
                span_cm.__exit__(None, None, None)
