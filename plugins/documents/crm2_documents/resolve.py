"""``crm2_resolve_entity`` for ``documents.document``: a document as other plugins may see it."""

from __future__ import annotations

from typing import Any

from crm2_core.api import EntityResolver
from crm2_documents.models import Document
from crm2_documents.repository.documents import DOCUMENTS
from crm2_documents.visibility import RULES


def _summary(row: Document) -> dict[str, Any]:
    if row.deleted_at is not None:
        return {}
    return {"kind": "documents.document", "id": str(row.id), "name": row.title,
            "document_kind": row.kind, "owner_id": str(row.owner_id) if row.owner_id else None,
            "link_kind": row.link_kind, "link_id": row.link_id,
            "current_version": row.current_version}  # fmt: skip


async def _resolve(session: Any, visibility: Any, id: Any) -> Any:
    row = await DOCUMENTS.get(session, visibility, id)
    return None if row is None or row.deleted_at is not None else _summary(row)


RESOLVER = EntityResolver(RULES, {"documents.document": _resolve})
