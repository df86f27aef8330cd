"""Documents: create, edit, link, delete (soft) and restore; emits document events.

Services take the principal and decide; they never commit (the request or the
job does, with the events in the outbox).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    EntityLink,
    Visibility,
    acting_user,
    check_version,
    publish,
    require_entity,
    take_turns,
    utcnow,
)
from crm2_documents.errors import (
    DocumentNotFound,
    InvalidKind,
    LinkChainTooLong,
    LinkCycle,
    NotRestorable,
)
from crm2_documents.events import (
    DocumentCreated,
    DocumentDeleted,
    DocumentRestored,
    DocumentUpdated,
)
from crm2_documents.models import Document, Version
from crm2_documents.repository import documents as repo
from crm2_documents.repository import kinds as kinds_repo
from crm2_documents.schemas.documents import (
    DocumentCreate,
    DocumentPublic,
    DocumentUpdate,
    search_key,
    tag_key,
)
from crm2_documents.visibility import RULES
from crm2_hookspecs import Principal


def identity(document: Document) -> dict[str, Any]:
    """The fields every documents event carries (the stream's visibility needs owner_id)."""
    return {
        "title": document.title,
        "kind": document.kind,
        "owner_id": document.owner_id,
        "link_kind": document.link_kind,
        "link_id": document.link_id,
    }


def publish_owner_change(
    session: AsyncSession, document: Any, owner: uuid.UUID, actor: Principal | None = None
) -> None:
    """``documents.updated`` (``changed=["owner_id"]``) for ``document`` (a ``Document`` or
    a row of its id, title, kind and link) now owned by ``owner``."""
    publish(
        session,
        DocumentUpdated(
            changed=["owner_id"],
            title=document.title,
            kind=document.kind,
            owner_id=owner,
            link_kind=document.link_kind,
            link_id=document.link_id,
        ),
        subject=document.id,
        actor=actor,
    )


def public(
    document: Any, current: Version | None = None, retention_days: int | None = None
) -> DocumentPublic:
    """A document, or a list page's plain row (``Repository.page_rows``)."""
    return DocumentPublic.model_validate(public_values(document, current, retention_days))


# DocumentPublic's fields that are the document's own columns
_COLUMNS_SHOWN = tuple(k for k in DocumentPublic.model_fields if hasattr(Document, k))


def public_values(
    document: Any, current: Version | None = None, retention_days: int | None = None
) -> dict[str, Any]:
    """``public``'s fields, unvalidated (``current`` as the entity): a list page
    validates its rows at once (``page_response``), without a model built per row."""
    purge_after = None
    if document.deleted_at is not None and retention_days is not None:
        purge_after = document.deleted_at + timedelta(days=retention_days)
    link = {"kind": document.link_kind, "id": document.link_id} if document.link_kind else None
    values = {k: getattr(document, k) for k in _COLUMNS_SHOWN}
    values.update(link=link, current=current, purge_after=purge_after)
    return values


def search_text(title: str, tags: list[str]) -> str:
    """What ``q`` searches: title and tags, folded as ``q`` is (``search_key``)."""
    return search_key("\n".join([title, *tags]))


def _owner_from(found: Mapping[str, Any] | None) -> uuid.UUID | None:
    """The linked record's owner (``owner_id``, else ``assignee_id``), if it names one."""
    for field in ("owner_id", "assignee_id"):
        raw = (found or {}).get(field)
        if raw:
            try:
                return uuid.UUID(str(raw))
            except ValueError:
                continue
    return None


async def link_owner(
    context: Any,
    principal: Principal,
    link: EntityLink | None,
    session: AsyncSession | None = None,
) -> uuid.UUID | None:
    """The owner of the record ``link`` names, checking the caller may see that record;
    ``None`` when there is no link or the record has no owner (see ``creators_own``).

    The owning plugin answers in ``session`` (the request's): on SQLite every
    transaction is ``BEGIN IMMEDIATE``, so a second session would wait for ours to
    end. Still called before the first write.
    """
    if link is None:
        return None
    if session is not None:  # read the owner in the record's turn: see record_turn
        await take_turns(session, record_turn(link.kind, str(link.id)))
    return _owner_from(await require_entity(context, link, principal, session))


def creators_own(document: Document, principal: Principal) -> uuid.UUID:
    """Who owns a document that no record's owner does (unlinked, or linked to a record
    without one): its creator, as the ``follow_owner`` handler hands such documents back
    (the caller, as at creation, when its creator's account is gone)."""
    return document.creator_id or acting_user(principal)


def record_turn(link_kind: str, link_id: str) -> int:
    """The advisory lock of one linked record. Linking a document reads the record's owner,
    then commits; ``handlers.follow_owner`` moves the record's documents when its owner
    changes. Taking turns, the handler either runs first (and the link reads the new
    owner) or waits for the link's commit (and moves the new document too): never a
    link that keeps an owner the record no longer has."""
    digest = hashlib.sha256(f"documents-record/{link_kind}/{link_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


DOCUMENT_KIND = "documents.document"


LINK_DEPTH_LIMIT = 100
"""The longest chain of document links a new link to a document is checked along: past it
the link is a ``422 documents-link-chain-too-long`` (the check is one query, bounded)."""


def _as_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:  # a link written before link ids were checked: the chain ends
        return None


async def refuse_cycle(session: AsyncSession, document_id: uuid.UUID, target: uuid.UUID) -> None:
    """422 when linking ``document_id`` to document ``target`` closes a cycle: ``target``
    is the document itself, or its chain of document links leads back to it; 422 too when
    that chain is ``LINK_DEPTH_LIMIT`` links or longer. Links to documents are made one at
    a time (``update_document`` takes one turn for them all), so two links made at once
    cannot close a cycle neither saw. A chain that loops elsewhere (links made before this
    rule) ends there: this link closes no cycle of its own."""
    seen: set[uuid.UUID] = set()
    for depth, text in enumerate(
        await repo.document_chain(session, target, document_id, LINK_DEPTH_LIMIT)
    ):
        node = _as_id(text)
        if node is None or node in seen:
            return
        if node == document_id:
            break
        seen.add(node)
        if depth >= LINK_DEPTH_LIMIT:
            raise LinkChainTooLong(
                f"document {target} is at the head of a chain of {LINK_DEPTH_LIMIT} or more "
                "linked documents: link to a document nearer its end"
            )
    else:
        return
    if depth == 0:
        raise LinkCycle(f"document {document_id} cannot be linked to itself")
    between = "" if depth == 1 else f" through {depth - 1} more document(s)"
    raise LinkCycle(
        f"linking document {document_id} to document {target} makes a cycle: "
        f"{target} is linked back to {document_id}{between}"
    )


async def check_kind(session: AsyncSession, key: str) -> None:
    kind = await kinds_repo.get_kind(session, key)
    if kind is None or not kind.active:
        raise InvalidKind(f"no active document kind {key!r}")


def visibility(session: AsyncSession, principal: Principal | None) -> Visibility:
    """The caller's rule, ``documents:all_records`` as the session's application's
    ``crm2_check_permission`` hooks allow it."""
    return RULES.in_session(session, principal)


async def get_document(
    session: AsyncSession,
    principal: Principal | None,
    document_id: uuid.UUID,
    *,
    deleted: bool = False,
) -> Document:
    """The visible document (404 otherwise); a deleted one only when ``deleted``."""
    document = await repo.DOCUMENTS.get_or_404(session, visibility(session, principal), document_id)
    if (document.deleted_at is not None) != deleted:
        state = "is not deleted" if deleted else "is deleted"
        raise DocumentNotFound(f"document {document_id} {state}")
    return document


async def create_document(
    session: AsyncSession, context: Any, principal: Principal, data: DocumentCreate
) -> Document:
    # before writing; the creator owns it where no record's owner does
    owner = await link_owner(context, principal, data.link, session) or acting_user(principal)
    await check_kind(session, data.kind)
    document = Document(
        title=data.title,
        kind=data.kind,
        tags=list(data.tags),
        tag_keys=[tag_key(t) for t in data.tags],
        link_kind=data.link.kind if data.link else None,
        link_id=str(data.link.id) if data.link else None,
        owner_id=owner,
        creator_id=acting_user(principal),
        search_text=search_text(data.title, list(data.tags)),
    )
    await repo.DOCUMENTS.add(session, document)
    event = DocumentCreated(creator_id=document.creator_id, **identity(document))
    publish(session, event, subject=document.id, actor=principal)
    return document


async def update_document(
    session: AsyncSession,
    context: Any,
    principal: Principal,
    document_id: uuid.UUID,
    if_match: str,
    data: DocumentUpdate,
) -> Document:
    sent = data.model_dump(exclude_unset=True)
    owner: uuid.UUID | None = None
    if "link" in sent and data.link is not None:  # before the first statement: see link_owner
        if data.link.kind == DOCUMENT_KIND:  # one such link at a time: see refuse_cycle
            await take_turns(session, record_turn(DOCUMENT_KIND, "*"))
        owner = await link_owner(context, principal, data.link, session)
    document = await get_document(session, principal, document_id)
    if "link" in sent and data.link is not None and data.link.kind == DOCUMENT_KIND:
        await refuse_cycle(session, document_id, data.link.id)
    version = check_version(if_match, document.version)
    values: dict[str, Any] = {}
    for field in ("title", "kind", "tags"):
        if field in sent and sent[field] != getattr(document, field):
            values[field] = sent[field]
    if "kind" in values:
        await check_kind(session, values["kind"])
    if "link" in sent:
        owner = owner or creators_own(document, principal)  # unlinked, or the record has none
        if data.link is None:
            link: dict[str, Any] = {"link_kind": None, "link_id": None, "owner_id": owner}
        else:
            link = {"link_kind": data.link.kind, "link_id": str(data.link.id), "owner_id": owner}
        values.update({k: v for k, v in link.items() if getattr(document, k) != v})
    if not values:
        return document
    if "tags" in values:
        values["tag_keys"] = [tag_key(t) for t in values["tags"]]
    if "title" in values or "tags" in values:
        values["search_text"] = search_text(
            values.get("title", document.title), values.get("tags", document.tags)
        )
    await repo.DOCUMENTS.update(session, document, values, expected_version=version)
    changed = sorted(k for k in values if k not in ("search_text", "tag_keys"))
    publish(
        session,
        DocumentUpdated(changed=changed, **identity(document)),
        subject=document.id,
        actor=principal,
    )
    return document


async def delete_document(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID, if_match: str | None
) -> None:
    """Soft delete: hidden now, restorable until the purge job removes it and its files."""
    document = await get_document(session, principal, document_id)
    version = check_version(if_match, document.version) if if_match else document.version
    await repo.DOCUMENTS.update(
        session, document, {"deleted_at": utcnow()}, expected_version=version
    )
    publish(
        session,
        DocumentDeleted(purged=False, **identity(document)),
        subject=document.id,
        actor=principal,
    )


async def restore_document(
    session: AsyncSession,
    principal: Principal,
    document_id: uuid.UUID,
    if_match: str | None,
    retention_days: int,
) -> Document:
    """Undo a delete until ``purge_after``. Past it the purge may be removing the files
    (files first, then the row): a restore then would keep a row without its files."""
    document = await repo.DOCUMENTS.get_or_404(session, visibility(session, principal), document_id)
    if document.deleted_at is None:
        raise NotRestorable(f"document {document_id} is not deleted")
    if document.deleted_at + timedelta(days=retention_days) <= utcnow():
        raise NotRestorable(f"document {document_id} is past its retention and being purged")
    version = check_version(if_match, document.version) if if_match else document.version
    await repo.DOCUMENTS.update(session, document, {"deleted_at": None}, expected_version=version)
    publish(session, DocumentRestored(**identity(document)), subject=document.id, actor=principal)
    return document


async def current_versions(
    session: AsyncSession, documents: Sequence[Any]
) -> dict[uuid.UUID, Version]:
    """The current version of each of ``documents`` (entities or plain rows) that has one."""
    pairs = [(d.id, d.current_version) for d in documents if d.current_version]
    return await repo.versions_by_numbers(session, pairs)


async def reassign_user(
    session: AsyncSession, from_user: uuid.UUID, to_user: uuid.UUID, actor: Principal | None
) -> int:
    """Hand every document of ``from_user`` to ``to_user``, a page at a time, with one
    ``documents.updated`` (``changed=["owner_id"]``) each."""
    moved, after = 0, None
    while rows := await repo.reassign_owner_page(session, from_user, to_user, after):
        for row in rows:
            publish_owner_change(session, row, to_user, actor)
        await session.flush()  # the page's events leave the session's memory
        moved, after = moved + len(rows), rows[-1].id
    return moved


def now() -> datetime:
    return utcnow()
