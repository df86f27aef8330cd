"""What documents does when other plugins' events arrive: follow the linked record's owner.

A document's visibility follows the record it is linked to. When a plugin
reports a record's new owner (an ``*.updated`` / ``*.assigned`` / ``*.reassigned``
event whose data carries ``owner_id`` or ``assignee_id``), the documents linked to
that record take it. A record left without one (the field there, null: a task
unassigned) hands its documents back to their creators, as unlinking does: nobody
keeps seeing a record's files once the record stops naming them. Documents' own
events count too (a document may be linked to another document, and follows its
owner as it is when the event is handled, not as the event said: the chain ends where
nothing changes, even round a cycle of links made before the cycle rule). Idempotent: a
redelivery finds nothing left to change.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_core.api import take_turns
from crm2_documents.models import Document
from crm2_documents.repository import documents as repo
from crm2_documents.service.documents import DOCUMENT_KIND, publish_owner_change, record_turn
from crm2_hookspecs import EventHandler

VERBS = ("updated", "assigned", "reassigned")


FIELDS = ("owner_id", "assignee_id")
UNOWNED = "unowned"


def _owner(data: Any) -> uuid.UUID | str | None:
    """The record's new owner, ``UNOWNED`` when the event says it has none, ``None`` when
    it says nothing of it (or names no user)."""
    if not isinstance(data, dict):
        return None
    for field in FIELDS:
        raw = data.get(field)
        if raw:
            try:
                return uuid.UUID(str(raw))
            except ValueError:
                return None
    return UNOWNED if any(field in data for field in FIELDS) else None


async def _document_owner_now(session: Any, subject: str) -> uuid.UUID | str | None:
    """A document's owner as it is now, not as its event said (``UNOWNED`` when it has
    none; ``None``: no such document). Documents may be linked into a cycle (links made
    before the cycle rule): two events with different owners, each handing the next
    document the owner it carried, would chase each other round it for ever. Read now,
    the first settles the cycle on one owner and the second finds nothing to change."""
    try:
        document_id = uuid.UUID(subject)
    except ValueError:
        return None
    document = await session.get(Document, document_id, populate_existing=True)
    if document is None:
        return None
    return document.owner_id or UNOWNED


async def follow_owner(session: Any, event: Any, context: Any) -> None:
    envelope = event.model_dump(mode="json") if hasattr(event, "model_dump") else dict(event)
    owner = _owner(envelope.get("data"))
    subject = envelope.get("subject")
    kind = ".".join(str(envelope.get("type", "")).split(".")[:2])
    if owner is None or not subject:
        return
    # after a link being made to this record commits: it may have read the old owner
    await take_turns(session, record_turn(kind, str(subject)))
    if kind == DOCUMENT_KIND:
        owner = await _document_owner_now(session, str(subject))
        if owner is None:
            return
    if isinstance(owner, uuid.UUID):
        moved = [(i, owner) for i in await repo.follow_owner(session, kind, str(subject), owner)]
    else:
        moved = await repo.return_to_creators(session, kind, str(subject))
    for document_id, new_owner in moved:
        document = await session.get(Document, document_id, populate_existing=True)
        if document is not None:
            publish_owner_change(session, document, new_owner)


def handlers(context: Any) -> list[EventHandler]:
    types = tuple(
        sorted(
            cls.event_type
            for _plugin, classes in context.plugins.call("crm2_event_types")
            for cls in classes
            if cls.event_type.rsplit(".", 1)[-1] in VERBS
        )
    )
    if not types:
        return []
    return [
        EventHandler(name="follow_owner", event_types=types, handle=follow_owner, max_retries=8)
    ]
