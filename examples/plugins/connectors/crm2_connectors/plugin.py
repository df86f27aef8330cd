"""The connectors plugin's manifest and hooks: the only wiring (``crm2.plugins`` entry point).

It implements two hooks that other plugins offer, not the core:
``crm2_notifications_channels`` (notifications) and
``crm2_documents_storage_backends`` (documents); ``depends`` makes sure both
plugins, and so their hookspecs, are there first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crm2_connectors.config import ConnectorsSettings
from crm2_hookspecs import Crm2Context, PluginManifest, hookimpl

if TYPE_CHECKING:
    from crm2_documents.storage.base import StorageBackend
    from crm2_notifications.hookspecs import NotificationChannel

manifest = PluginManifest(
    name="connectors",
    title="Connectors (example plugin)",
    requires_core=">=0.1,<1",
    depends=("notifications", "documents"),
    settings=ConnectorsSettings,
    description="A Slack-compatible chat channel for notifications and a WebDAV backend "
    "for documents.",
)


@hookimpl
def crm2_notifications_channels(context: Crm2Context) -> Sequence[NotificationChannel]:
    """The ``chat`` channel; it reports itself disabled while no webhook URL is set."""
    from crm2_connectors.chat import ChatChannel

    return [ChatChannel()]


@hookimpl
def crm2_documents_storage_backends(context: Crm2Context) -> Sequence[StorageBackend]:
    """The ``webdav`` backend when ``CRM2_CONNECTORS_WEBDAV_URL`` is set (no I/O here)."""
    from crm2_connectors.webdav import WebDavBackend

    settings = context.plugin_settings("connectors")
    if not settings.webdav_url:
        return []
    return [
        WebDavBackend(
            settings.webdav_url,
            username=settings.webdav_username,
            password=settings.webdav_password.get_secret_value(),
            timeout=settings.webdav_timeout_seconds,
        )
    ]
