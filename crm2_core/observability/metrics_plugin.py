"""The ``metrics`` default plugin: /metrics for API processes, a metrics port for workers.

Off by default (``CRM2_METRICS_ENABLED``); needs the ``crm2-core[metrics]`` extra when on.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from crm2_core.context import METRICS, AppContext
from crm2_core.observability.config import MetricsSettings
from crm2_core.observability.extras import require_extra
from crm2_hookspecs import Permission, PluginManifest, hookimpl

manifest = PluginManifest(
    name="metrics",
    title="Prometheus metrics",
    description="/metrics for the API processes, a metrics port for the workers.",
    settings=MetricsSettings,
)


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [Permission("metrics:read", "Read /metrics from outside the allowed networks")]


@hookimpl
def crm2_configure(context: AppContext) -> None:
    settings: MetricsSettings = context.plugin_settings("metrics")
    if not settings.enabled:
        return
    require_extra("prometheus_client", "metrics", "CRM2_METRICS_ENABLED")
    from crm2_core.observability.metrics import Metrics

    context.provide(METRICS, Metrics(context))


@hookimpl
def crm2_routers(context: AppContext) -> Sequence[APIRouter]:
    from crm2_core.observability.routes import router

    return [router] if context.plugin_settings("metrics").enabled else []


@hookimpl
def crm2_worker_boot(context: AppContext) -> None:
    from crm2_core.observability.metrics import metrics_of
    from crm2_core.observability.worker import serve_worker_metrics

    settings: MetricsSettings = context.plugin_settings("metrics")
    metrics = metrics_of(context)
    if metrics is not None and settings.worker_port:
        serve_worker_metrics(context, metrics, settings.worker_host, settings.worker_port)
