"""The metrics endpoint of a ``crm2 worker`` process (prometheus-client's own HTTP server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm2_core.context import AppContext

import logging
from collections.abc import Iterable
from typing import Any

from crm2_core.context import METRICS_SERVER
from crm2_core.observability.metrics import Metrics

log = logging.getLogger(__name__)


class _Refreshing:
    """The process's registry, with the pool readings refreshed before each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        self.metrics.collect_process_state()
        return self.metrics.registry.collect()


def serve_worker_metrics(context: AppContext, metrics: Metrics, host: str, port: int) -> None:
    """Serve ``/metrics`` of this worker on ``host:port`` from a daemon thread."""
    from prometheus_client import start_http_server

    metrics.set_role("worker")
    server, _thread = start_http_server(
        port,
        addr=host,
        registry=_Refreshing(metrics),
    )
    context.provide(METRICS_SERVER, server)
    log.info("worker metrics on http://%s:%d/metrics", host, port)
