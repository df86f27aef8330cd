"""The documents sections of the web console (``crm2_console_views``); rendered by the console."""

from __future__ import annotations

from crm2_hookspecs import ConsoleView

VIEWS = (
    ConsoleView(
        key="documents.documents",
        title="Documents",
        titles={"ru": "Документы"},
        list_path="/api/v1/documents/documents",
        item_path="/api/v1/documents/documents/{id}",
        permission="documents:read",
        write_permission="documents:write",
        item_schema="DocumentPublic",
        create_schema="DocumentCreate",
        update_schema="DocumentUpdate",
        columns=("title", "kind", "tags", "current_version", "updated_at"),
        filters=("q", "kind", "tag"),
        form=("title", "kind", "tags"),
        edit=("title", "kind", "tags"),
        screen="documents.list",
        stream="documents",
        order=60,
    ),
)
