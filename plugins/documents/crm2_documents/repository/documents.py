"""Every query on documents and versions, with the visibility rule applied."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import (
    Integer,
    Row,
    Select,
    String,
    Uuid,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from crm2_core.api import (
    Filter,
    LinkIdFilter,
    LinkKindFilter,
    OrderKey,
    PageParams,
    Repository,
    Sorts,
    Visibility,
    contains_text,
    eq,
    json_list_contains,
    paginate,
    utcnow,
    where_all,
)
from crm2_documents.errors import DocumentNotFound
from crm2_documents.models import Document, Version
from crm2_documents.schemas.documents import KindKey, Tag, search_key, tag_key

DOCUMENT_SORTS = Sorts(
    {
        "updated_at": col(Document.updated_at),
        "created_at": col(Document.created_at),
        "title": col(Document.title),
    },
    id_column=col(Document.id),
    default="-updated_at",
)
DOCUMENTS = Repository(
    Document, DocumentNotFound, owner=col(Document.owner_id), sorts=DOCUMENT_SORTS, noun="document"
)


@dataclass(frozen=True)
class DocumentFilters:
    """The list's query parameters, declared once (``query_filters``)."""

    kind: KindKey | None = None
    tag: Tag | None = None
    link_kind: LinkKindFilter = None
    link_id: LinkIdFilter = None
    owner: uuid.UUID | None = None
    q: Annotated[str | None, Filter("in title and tags", max_length=200)] = None
    deleted: Annotated[bool, Filter("deleted documents not yet purged, instead of live ones")] = (
        False
    )


def document_select(
    session: AsyncSession, visibility: Visibility, f: DocumentFilters
) -> Select[Any]:
    deleted = (
        col(Document.deleted_at).is_not(None) if f.deleted else col(Document.deleted_at).is_(None)
    )
    return where_all(
        DOCUMENTS.visible_rows(visibility),
        deleted,
        eq(col(Document.kind), f.kind),
        eq(col(Document.link_kind), f.link_kind),
        eq(col(Document.link_id), f.link_id),
        eq(col(Document.owner_id), f.owner),
        # tags are one tag ignoring case: the filter compares their keys (GIN-indexed on
        # PostgreSQL, the expression json_list_contains writes)
        json_list_contains(session, col(Document.tag_keys), tag_key(f.tag) if f.tag else None),
        # folded as the search text was written (service.search_text): case-folded in
        # Python, since PostgreSQL's lower() leaves ``ß`` as it is (``strasse`` missed it)
        contains_text(search_key(f.q) if f.q else None, col(Document.search_text)),
    )


async def list_documents(
    session: AsyncSession, visibility: Visibility, f: DocumentFilters, sort: str, page: PageParams
) -> tuple[list[Any], str | None]:
    """A page of documents as plain rows (read by attribute: only shown)."""
    stmt = document_select(session, visibility, f)
    return await DOCUMENTS.page_rows(session, stmt, page, sort=sort)


DOCUMENT_LINK = "documents.document"
# the 8-4-4-4-12 form (or without dashes) PostgreSQL's uuid input takes: a link id that is
# not one (written before link ids were checked) ends the chain instead of failing the cast
_UUID_TEXT = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def _id_is(session: AsyncSession, id_column: Any, link_id: Any) -> Any:
    """The condition "``id_column`` is the document ``link_id`` (text) names", written so
    that the primary key's index answers it: on PostgreSQL the text cast to uuid (when it
    is one), on SQLite (ids kept as 32 lowercase hex digits) the text without its dashes."""
    if session.get_bind().dialect.name == "postgresql":
        as_id = case((link_id.regexp_match(_UUID_TEXT), cast(link_id, Uuid)), else_=None)
        return id_column == as_id
    return id_column == func.lower(func.replace(link_id, "-", ""))


async def document_chain(
    session: AsyncSession, start: uuid.UUID, stop: uuid.UUID, limit: int
) -> list[str]:
    """``start``, then the document it is linked to, that one's, … (ids as text, any
    state), ending at ``stop`` when the chain reaches it, at a document linked to none,
    or after ``limit`` links: one query (a recursive CTE) however long the chain, and
    bounded even where links written before the cycle rule loop."""
    first = select(
        literal(str(start), String).label("node"), literal(0, Integer).label("depth")
    ).cte("documents_chain", recursive=True)
    linked = aliased(Document, name="documents_linked")
    following = (
        select(col(linked.link_id).label("node"), (first.c.depth + 1).label("depth"))
        .join_from(first, linked, _id_is(session, col(linked.id), first.c.node))
        .where(
            col(linked.link_kind) == DOCUMENT_LINK,
            col(linked.link_id).is_not(None),
            first.c.node != str(stop),
            first.c.depth < limit,
        )
    )
    chain = first.union_all(following)
    stmt = select(chain.c.node).order_by(chain.c.depth)
    return [str(node) for node in (await session.execute(stmt)).scalars()]


async def versions_of(session: AsyncSession, document_id: uuid.UUID) -> list[Version]:
    """Every version of a document (the purge removes all their files)."""
    stmt = (
        select(Version)
        .where(col(Version.document_id) == document_id)
        .order_by(col(Version.number).desc())
    )
    return list((await session.execute(stmt)).scalars())


# (document_id, number) is unique: the number alone orders a document's versions
VERSION_ORDER = [OrderKey(col(Version.number), descending=True)]


async def versions_page(
    session: AsyncSession, document_id: uuid.UUID, page: PageParams
) -> tuple[list[Version], str | None]:
    """A page of a document's versions, newest first (the caller proved it may see it)."""
    stmt = select(Version).where(col(Version.document_id) == document_id)
    return await paginate(session, stmt, VERSION_ORDER, page)


async def version(session: AsyncSession, document_id: uuid.UUID, number: int) -> Version | None:
    stmt = select(Version).where(
        col(Version.document_id) == document_id, col(Version.number) == number
    )
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
            and_(
                col(Document.id) == col(Version.document_id),
                col(Document.current_version) == col(Version.number),
            ),
        )
        .where(col(Document.id).in_(ids))
    )
    return {v.document_id: v for v in (await session.execute(stmt)).scalars()}


async def duplicate_of(
    session: AsyncSession, visibility: Visibility, document: Document, sha256: str
) -> uuid.UUID | None:
    """A live document under the same record (or this document) holding a file with
    ``sha256``, among those ``visibility`` sees: one the uploader cannot see is never named
    (nor its content confirmed)."""
    if document.link_kind is not None:
        scope = and_(
            col(Document.link_kind) == document.link_kind, col(Document.link_id) == document.link_id
        )
    else:
        scope = col(Document.id) == document.id
    stmt = (
        select(col(Document.id))
        .join(Version, col(Version.document_id) == col(Document.id))
        .where(scope, col(Document.deleted_at).is_(None), col(Version.sha256) == sha256)
        .where(visibility.where(col(Document.owner_id)))
        .limit(1)
    )
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def next_number(session: AsyncSession, document_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.max(col(Version.number)), 0)).where(
        col(Version.document_id) == document_id
    )
    return int((await session.execute(stmt)).scalar_one()) + 1


def _past_retention(before: datetime) -> Any:
    return and_(col(Document.deleted_at).is_not(None), col(Document.deleted_at) < before)


def _on_unknown_backend(backends: Sequence[str]) -> Any:
    """A version of the document is (or is moving) on a backend not in ``backends``."""
    known = list(backends)
    return (
        select(1)
        .where(
            col(Version.document_id) == col(Document.id),
            or_(
                col(Version.backend).not_in(known),
                and_(
                    col(Version.target_backend).is_not(None),
                    col(Version.target_backend).not_in(known),
                ),
            ),
        )
        .exists()
    )


async def purgeable(
    session: AsyncSession, before: datetime, limit: int, backends: Sequence[str]
) -> list[Document]:
    """Deleted documents past retention whose files are all on ``backends`` (the configured
    ones), oldest deletion first. One with a file elsewhere cannot be purged (its file
    cannot be removed): it is left out, so it never fills the batch (``purge_blocked``)."""
    stmt = (
        select(Document)
        .where(_past_retention(before), ~_on_unknown_backend(backends))
        .order_by(col(Document.deleted_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def purge_blocked(
    session: AsyncSession, before: datetime, backends: Sequence[str]
) -> dict[str, int]:
    """Per backend not in ``backends``: how many documents past retention have a file on it
    (or moving to it), so cannot be purged."""
    known = list(backends)

    def on(column: Any) -> Select[Any]:
        return (
            select(column.label("backend"), col(Version.document_id).label("document_id"))
            .join(Document, col(Document.id) == col(Version.document_id))
            .where(_past_retention(before), column.is_not(None), column.not_in(known))
        )

    pairs = (on(col(Version.backend)), on(col(Version.target_backend)))
    blocked = union(*pairs).subquery()  # a UNION: one row per backend and document
    stmt = select(blocked.c.backend, func.count()).group_by(blocked.c.backend)
    return {str(name): int(n) for name, n in (await session.execute(stmt)).all()}


async def purge(session: AsyncSession, document_id: uuid.UUID, before: datetime) -> bool:
    """Delete the document if it is still deleted before ``before`` (another run may have won)."""
    result = await session.execute(
        delete(Document).where(
            col(Document.id) == document_id,
            col(Document.deleted_at).is_not(None),
            col(Document.deleted_at) < before,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


REASSIGN_PAGE = 500  # documents handed over per statement: memory stays bounded


async def reassign_owner_page(
    session: AsyncSession, from_user: uuid.UUID, to_user: uuid.UUID, after: uuid.UUID | None
) -> Sequence[Row[uuid.UUID, str, str, str | None, str | None]]:
    """Hand the next ``REASSIGN_PAGE`` of ``from_user``'s documents (by id, after
    ``after``) to ``to_user``; what each event needs of them, in id order."""
    stmt = (
        select(
            col(Document.id),
            col(Document.title),
            col(Document.kind),
            col(Document.link_kind),
            col(Document.link_id),
        )
        .where(col(Document.owner_id) == from_user)
        .order_by(col(Document.id))
        .limit(REASSIGN_PAGE)
    )
    if after is not None:  # keyset: never loops, even if from_user is to_user
        stmt = stmt.where(col(Document.id) > after)
    rows = list((await session.execute(stmt)).all())
    if rows:
        await session.execute(
            update(Document)
            .where(col(Document.id).in_([r.id for r in rows]))
            .where(col(Document.owner_id) == from_user)
            .values(owner_id=to_user, version=col(Document.version) + 1, updated_at=utcnow())
        )
    return rows


async def follow_owner(
    session: AsyncSession, link_kind: str, link_id: str, owner_id: uuid.UUID
) -> list[uuid.UUID]:
    """Documents linked to a record whose owner changed take its new owner."""
    stmt = select(col(Document.id)).where(
        col(Document.link_kind) == link_kind,
        col(Document.link_id) == link_id,
        col(Document.owner_id).is_distinct_from(owner_id),
    )
    ids = list((await session.execute(stmt)).scalars())
    if ids:
        await session.execute(
            update(Document)
            .where(col(Document.id).in_(ids))
            .values(owner_id=owner_id, version=col(Document.version) + 1, updated_at=utcnow())
        )
    return ids


async def return_to_creators(
    session: AsyncSession, link_kind: str, link_id: str
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Documents linked to a record left without an owner go back to their creators (one
    without a creator keeps its owner); each moved one with its new owner."""
    stmt = select(col(Document.id), col(Document.creator_id)).where(
        col(Document.link_kind) == link_kind,
        col(Document.link_id) == link_id,
        col(Document.creator_id).is_not(None),
        col(Document.owner_id).is_distinct_from(col(Document.creator_id)),
    )
    rows = (await session.execute(stmt)).all()
    moved = [(document_id, creator) for document_id, creator in rows if creator is not None]
    if moved:
        await session.execute(
            update(Document)
            .where(col(Document.id).in_([document_id for document_id, _ in moved]))
            .values(
                owner_id=col(Document.creator_id),
                version=col(Document.version) + 1,
                updated_at=utcnow(),
            )
        )
    return moved


async def keys_named(session: AsyncSession, backend: str, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` a version names on ``backend``: where its file is, or where it is
    being moved (the transfer's copy lands before the version says so)."""
    if not keys:
        return set()
    stmt = select(col(Version.storage_key)).where(
        col(Version.storage_key).in_(list(keys)),
        or_(col(Version.backend) == backend, col(Version.target_backend) == backend),
    )
    return set((await session.execute(stmt)).scalars())
