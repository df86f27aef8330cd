"""The ``tracing`` default plugin: OpenTelemetry traces, request → outbox → broker → handler.

Off by default (``CRM2_TRACING_ENABLED``); needs the ``crm2-core[tracing]`` extra when on.
"""

from __future__ import annotations

from crm2_core.context import TRACING, AppContext
from crm2_core.observability.config import TracingSettings
from crm2_core.observability.extras import require_extra
from crm2_hookspecs import PluginManifest, hookimpl

manifest = PluginManifest(
    name="tracing",
    title="OpenTelemetry traces",
    description="One trace from the HTTP request through the outbox and broker to the handlers.",
    settings=TracingSettings,
)


@hookimpl
def crm2_configure(context: AppContext) -> None:
    settings: TracingSettings = context.plugin_settings("tracing")
    if not settings.enabled:
        return
    require_extra("opentelemetry.sdk", "tracing", "CRM2_TRACING_ENABLED")
    from crm2_core.observability.tracing import Tracing

    context.provide(TRACING, Tracing(settings))


@hookimpl
def crm2_shutdown(context: AppContext) -> None:
    tracing = context.find(TRACING)
    if tracing is not None:
        tracing.shutdown()
