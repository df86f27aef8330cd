"""Prometheus metrics of one crm2 process (``crm2-core[metrics]``: prometheus-client).

One ``Metrics`` per application context, on the context (``context.find(METRICS)``), each
with its own registry: two apps in one process (tests) never share counters.
Counters and histograms are updated where things happen; state that lives in
the database (outbox backlog, relay lag, dead letters) or in objects (the
connection pool, SSE subscriptions) is read when ``/metrics`` is scraped.

Instrumented code calls the module-level ``record_*`` functions with the
context; they do nothing when metrics are off, so nothing else needs to know.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlmodel import col

from crm2_core.context import EVENTS, METRICS, STREAMS, AppContext
from crm2_core.db import utcnow

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)
# Request latencies: a 2-core box answers reads in ~2 ms, SSE opens and imports take seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0)


class Metrics:
    """The process's metric families; see docs/operators.md for what each one means."""

    def __init__(self, context: AppContext, role: str = "api") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.context = context
        self.role = role
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "crm2_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "crm2_http_request_duration_seconds",
            "time to the end of the response, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.handler_runs = Counter(
            "crm2_handler_runs",
            "handler deliveries by handler and outcome "
            "(applied, duplicate, waiting, failed, dead_lettered)",
            ["handler", "outcome"],
            registry=r,
        )
        self.handler_duration = Histogram(
            "crm2_handler_duration_seconds",
            "time one handler delivery took, by handler",
            ["handler"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "crm2_rate_limit_rejections",
            "requests refused with 429 by the per-client rate limit",
            registry=r,
        )
        self.job_runs = Counter(
            "crm2_scheduled_job_runs",
            "scheduled job runs by job and outcome (ok, failed)",
            ["job", "outcome"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "crm2_outbox_backlog",
            "events committed but not yet relayed to the broker and streams",
            registry=r,
        )
        self.relay_lag = Gauge(
            "crm2_outbox_relay_lag_seconds",
            "age of the oldest unrelayed event (0 when none waits)",
            registry=r,
        )
        self.dead_letters = Gauge(
            "crm2_dead_letters",
            "dead letters waiting for a replay, by handler",
            ["handler"],
            registry=r,
        )
        self.sse_connections = Gauge(
            "crm2_sse_connections",
            "open SSE connections of this process, by channel",
            ["channel"],
            registry=r,
        )
        self.db_pool = Gauge(
            "crm2_db_pool_connections",
            "database connections of this process's pool, by state (in_use, idle, size)",
            ["state"],
            registry=r,
        )
        self.info = Gauge(
            "crm2_process_info",
            "1, labelled with the process role and the crm2-core version",
            ["role", "version"],
            registry=r,
        )
        self.set_role(role)

    def set_role(self, role: str) -> None:
        """``api`` or ``worker``: the ``role`` label of ``crm2_process_info``."""
        from crm2_core import __version__

        self.role = role
        self.info.clear()
        self.info.labels(role=role, version=__version__).set(1)

    # -- read when scraped ------------------------------------------------------------

    def collect_process_state(self) -> None:
        """Readings that need no I/O: the connection pool and the SSE subscriptions."""
        pool = self.context.engine.sync_engine.pool
        size = getattr(pool, "size", None)
        checked_out = getattr(pool, "checkedout", None)
        idle = getattr(pool, "checkedin", None)
        if callable(size) and callable(checked_out) and callable(idle):
            self.db_pool.labels("size").set(size())
            self.db_pool.labels("in_use").set(checked_out())
            self.db_pool.labels("idle").set(idle())
        streams = self.context.find(STREAMS)
        counts = streams.hub.channel_counts() if streams is not None else {}
        self.sse_connections.clear()
        channels = getattr(streams, "channels", None) or {}
        for name in channels:
            self.sse_connections.labels(name).set(0)
        for name, count in counts.items():
            self.sse_connections.labels(name).set(count)

    async def collect_database_state(self) -> None:
        """Readings from the database: outbox backlog, relay lag, waiting dead letters."""
        from crm2_core.events.models import DeadLetter, EventRecord

        async with self.context.session_factory() as session:
            backlog, oldest = (
                await session.execute(
                    select(func.count(), func.min(col(EventRecord.occurred_at))).where(
                        col(EventRecord.relayed_at).is_(None)
                    )
                )
            ).one()
            letters = (
                await session.execute(
                    select(col(DeadLetter.handler), func.count())
                    .where(
                        col(DeadLetter.retried_at).is_(None), col(DeadLetter.skipped_at).is_(None)
                    )
                    .group_by(col(DeadLetter.handler))
                )
            ).all()
        self.outbox_backlog.set(backlog)
        lag = 0.0 if oldest is None else max(0.0, (utcnow() - _aware(oldest)).total_seconds())
        self.relay_lag.set(lag)
        self.dead_letters.clear()
        for handler in self._handler_ids():
            self.dead_letters.labels(handler).set(0)
        for handler, count in letters:
            self.dead_letters.labels(handler).set(count)

    def _handler_ids(self) -> list[str]:
        bus = self.context.find(EVENTS)
        return sorted(bus.handlers.handlers) if bus is not None else []

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def _aware(moment: Any) -> Any:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def metrics_of(context: Any) -> Metrics | None:
    """The application's metrics, or ``None`` (off, or not a crm2 application context)."""
    return context.find(METRICS) if isinstance(context, AppContext) else None


# -- called by instrumented code; no-ops when metrics are off -------------------------------


def record_handler(context: Any, handler: str, outcome: str, seconds: float) -> None:
    metrics = metrics_of(context)
    if metrics is not None:
        metrics.handler_runs.labels(handler, outcome).inc()
        metrics.handler_duration.labels(handler).observe(seconds)


def record_rate_limited(context: Any) -> None:
    metrics = metrics_of(context)
    if metrics is not None:
        metrics.rate_limited.inc()


def record_job(context: Any, job: str, ok: bool) -> None:
    metrics = metrics_of(context)
    if metrics is not None:
        metrics.job_runs.labels(job, "ok" if ok else "failed").inc()
