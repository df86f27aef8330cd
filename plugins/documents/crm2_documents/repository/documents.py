"""Every query on documents and versions, with the visibility rule applied."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    PageParams,
    Repository,
    Sorts,
    Visibility,
    contains_text,
    eq,
    json_list_contains,
    where_all,
)
from crm2_documents.errors import DocumentNotFound
from crm2_documents.models import Document, Version

DOCUMENT_SORTS = Sorts(
    {"updated_at": Document.updated_at, "created_at": Document.created_at, "title": Document.title},
    id_column=Document.id,
    default="-updated_at",
)
DOCUMENTS = Repository(
    Document, DocumentNotFound, owner=Document.owner_id, sorts=DOCUMENT_SORTS, noun="document"
)


@dataclass(frozen=True)
class DocumentFilters:
    kind: str | None = None
    tag: str | None = None
    link_kind: str | None = None
    link_id: str | None = None
    owner: uuid.UUID | None = None
    q: str | None = None
    deleted: bool = False


def document_select(
    session: AsyncSession, visibility: Visibility, f: DocumentFilters
) -> Select[Any]:
    deleted = Document.deleted_at.is_not(None) if f.deleted else Document.deleted_at.is_(None)  # type: ignore[union-attr]
    return where_all(
        DOCUMENTS.visible(visibility),
        deleted,
        eq(Document.kind, f.kind),
        eq(Document.link_kind, f.link_kind),
        eq(Document.link_id, f.link_id),
        eq(Document.owner_id, f.owner),
        json_list_contains(session, Document.tags, f.tag),
        contains_text(f.q, Document.search_text),
    )


async def list_documents(
    session: AsyncSession, visibility: Visibility, f: DocumentFilters, sort: str, page: PageParams
) -> tuple[list[Document], str | None]:
    return await DOCUMENTS.page(session, document_select(session, visibility, f), page, sort=sort)


async def versions_of(session: AsyncSession, document_id: uuid.UUID) -> list[Version]:
    stmt = select(Version).where(Version.document_id == document_id).order_by(Version.number.desc())  # type: ignore[attr-defined]
    return list((await session.execute(stmt)).scalars())


async def version(session: AsyncSession, document_id: uuid.UUID, number: int) -> Version | None:
    stmt = select(Version).where(Version.document_id == document_id, Version.number == number)
    row: Version | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return row


async def versions_by_numbers(
    session: AsyncSession, pairs: Sequence[tuple[uuid.UUID, int]]
) -> dict[uuid.UUID, Version]:
    """The current versions of a page of documents, in one query."""
    if not pairs:
        return {}
    ids = [p[0] for p in pairs]
    stmt = (
        select(Version)
        .join(
            Document,
            and_(Document.id == Version.document_id, Document.current_version == Version.number),
        )
        .where(Document.id.in_(ids))
    )  # type: ignore[attr-defined]
    return {v.document_id: v for v in (await session.execute(stmt)).scalars()}


async def duplicate_of(session: AsyncSession, document: Document, sha256: str) -> uuid.UUID | None:
    """A live document under the same record (or this document) holding a file with ``sha256``."""
    if document.link_kind is not None:
        scope = and_(Document.link_kind == document.link_kind, Document.link_id == document.link_id)
    else:
        scope = Document.id == document.id
    stmt = (
        select(Document.id)
        .join(Version, Version.document_id == Document.id)
        .where(scope, Document.deleted_at.is_(None), Version.sha256 == sha256)  # type: ignore[union-attr]
        .limit(1)
    )
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def next_number(session: AsyncSession, document_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.max(Version.number), 0)).where(
        Version.document_id == document_id
    )
    return int((await session.execute(stmt)).scalar_one()) + 1


async def purgeable(session: AsyncSession, before: datetime, limit: int) -> list[Document]:
    stmt = (
        select(Document)
        .where(Document.deleted_at.is_not(None), Document.deleted_at < before)  # type: ignore[union-attr,operator]
        .order_by(Document.deleted_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def purge(session: AsyncSession, document_id: uuid.UUID, before: datetime) -> bool:
    """Delete the document if it is still deleted before ``before`` (another run may have won)."""
    result = await session.execute(
        delete(Document).where(
            Document.id == document_id,
            Document.deleted_at.is_not(None),  # type: ignore[union-attr]
            Document.deleted_at < before,  # type: ignore[operator]
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def reassign_owner(
    session: AsyncSession, from_user: uuid.UUID, to_user: uuid.UUID
) -> list[Document]:
    stmt = select(Document).where(Document.owner_id == from_user)
    rows = list((await session.execute(stmt)).scalars())
    if rows:
        await session.execute(
            update(Document)
            .where(Document.owner_id == from_user)
            .values(owner_id=to_user, version=Document.version + 1)
        )
    return rows


async def follow_owner(
    session: AsyncSession, link_kind: str, link_id: str, owner_id: uuid.UUID
) -> list[uuid.UUID]:
    """Documents linked to a record whose owner changed take its new owner."""
    stmt = select(Document.id).where(
        Document.link_kind == link_kind,
        Document.link_id == link_id,
        Document.owner_id.is_distinct_from(owner_id),  # type: ignore[union-attr]
    )
    ids = list((await session.execute(stmt)).scalars())
    if ids:
        await session.execute(
            update(Document)
            .where(Document.id.in_(ids))  # type: ignore[attr-defined]
            .values(owner_id=owner_id, version=Document.version + 1)
        )
    return ids
