"""The ``streams`` default plugin: live SSE streams of the event log and their AsyncAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from fastapi import APIRouter

from crm2_core.context import STREAMS, AppContext
from crm2_core.streams.routes import asyncapi_router
from crm2_core.streams.routes import router as streams_router
from crm2_core.streams.service import Streams, attach_publisher
from crm2_hookspecs import PluginManifest, hookimpl

manifest = PluginManifest(
    name="streams",
    title="Live streams",
    depends=("events", "auth"),
    description="GET /api/v1/streams/<channel>: Server-Sent Events with Last-Event-ID resume.",
)


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    return [streams_router, asyncapi_router]


@hookimpl
def crm2_configure(context: AppContext) -> None:
    context.provide(STREAMS, Streams(context))


@hookimpl
def crm2_startup(context: AppContext) -> Awaitable[None]:
    return context.streams.start()


@hookimpl
def crm2_shutdown(context: AppContext) -> Awaitable[None]:
    return context.streams.close()


@hookimpl
def crm2_worker_boot(context: AppContext) -> None:
    attach_publisher(context)
