"""The documents plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from crm2_documents.config import DocumentsSettings
from crm2_documents.hookspecs import DocumentsSpec
from crm2_hookspecs import (
    ConsoleView,
    Crm2Context,
    EventHandler,
    Permission,
    PluginManifest,
    Principal,
    ScheduledJob,
    SseChannel,
    hookimpl,
)

manifest = PluginManifest(
    name="documents",
    title="Documents",
    requires_core=">=0.1,<1",
    settings=DocumentsSettings,
    hookspecs=(DocumentsSpec,),
    description="Document metadata and versions on pluggable storage; safe upload and download.",
)

EVERYONE = ("admin", "manager", "agent", "viewer")
EDITORS = ("admin", "manager", "agent")


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_documents.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm2_permissions() -> Sequence[Permission]:
    return [
        Permission("documents:read", "Read documents, their versions and download files", EVERYONE),
        Permission("documents:write", "Create documents, upload versions, edit metadata", EDITORS),
        Permission("documents:delete", "Delete and restore documents", ("admin", "manager")),
        Permission(
            "documents:admin",
            "Manage document kinds, storage backends and transfers",
            ("admin",),
        ),
        Permission(
            "documents:all_records",
            "See every document, not only those of records one owns",
            ("admin", "manager", "viewer"),
        ),
    ]


@hookimpl
def crm2_configure(context: Crm2Context) -> None:
    from crm2_documents.signing import configure_signing
    from crm2_documents.storage.registry import Storage, build_storage

    configure_signing(context)
    context.provide(Storage, build_storage(context))


@hookimpl
def crm2_documents_storage_backends(context: Crm2Context) -> Sequence[Any]:
    from crm2_documents.storage.builtin import builtin_backends

    return builtin_backends(context)


@hookimpl
def crm2_startup(context: Crm2Context) -> None:
    from crm2_documents.storage.local import LocalBackend
    from crm2_documents.storage.registry import storage_of

    for backend in storage_of(context).backends.values():
        if isinstance(backend, LocalBackend):
            backend.sweep_incoming()


@hookimpl
def crm2_shutdown(context: Crm2Context) -> Awaitable[None]:
    from crm2_documents.storage.registry import storage_of

    return storage_of(context).aclose()


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    from crm2_documents.routes import routers

    return routers()


@hookimpl
def crm2_event_types() -> Sequence[type]:
    from crm2_documents.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def crm2_event_handlers(context: Crm2Context) -> Sequence[EventHandler]:
    from crm2_documents.handlers import handlers

    return handlers(context)


@hookimpl
def crm2_scheduled_jobs(context: Crm2Context) -> Sequence[ScheduledJob]:
    from crm2_documents.jobs import scheduled_jobs

    return scheduled_jobs(context)


@hookimpl
def crm2_sse_channels() -> Sequence[SseChannel]:
    from crm2_documents.stream import channels

    return channels()


@hookimpl
def crm2_console_views() -> Sequence[ConsoleView]:
    from crm2_documents.console import VIEWS

    return VIEWS


@hookimpl
def crm2_resolve_entity(
    kind: str, id: str, principal: Principal | None, context: Crm2Context, session: Any
) -> Awaitable[Mapping[str, Any] | None] | None:
    from crm2_documents.resolve import RESOLVER

    return RESOLVER(kind, id, principal, context, session)  # type: ignore[arg-type]


@hookimpl
def crm2_reassign_user(
    from_user: uuid.UUID, to_user: uuid.UUID, session: Any, actor: Principal | None
) -> Awaitable[Mapping[str, int]]:
    from crm2_documents.service.documents import reassign_user

    async def run() -> Mapping[str, int]:
        return {"documents": await reassign_user(session, from_user, to_user, actor)}

    return run()


@hookimpl
def crm2_seed(name: str, context: Crm2Context) -> Awaitable[None] | None:
    from crm2_documents.seeds import seed

    return seed(name, context)


@hookimpl(optionalhook=True)
def crm2_backup_targets(context: Crm2Context) -> Sequence[Any]:
    """The local storage backend's files, for the backup plugin (when it is enabled)."""
    from crm2_documents.backup_target import backup_targets

    return backup_targets(context)


@hookimpl(optionalhook=True)
def crm2_backup_destinations(context: Crm2Context) -> Sequence[Any]:
    """Each storage backend as a place backup sets are copied to (``documents:<backend>``)."""
    from crm2_documents.backup_destination import backup_destinations

    return backup_destinations(context)
