"""Linked records: who owns one, and the turn a payment's link and its owner handlers take.

Creating a payment with a ``link`` reads the linked record's owner, then commits; the
owner handlers (``owners.follow_link``, ``schedules.follow_owner``) move the payments
linked to a record when it changes hands, and an activation reads the policy's owner
before it writes the instalments. Both sides take the record's turn
(``take_turns``, held to the commit), so a handler either runs first (and the new
payment reads the new owner) or waits for the payment's commit (and moves it too):
never a payment that keeps an owner its record no longer has.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import take_turns


def record_turn(kind: str, record_id: str) -> int:
    """The advisory lock key of one linked record (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"payments-record/{kind}/{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def take_record_turn(session: AsyncSession, kind: str, record_id: str) -> None:
    """Wait for the transactions holding ``kind``/``record_id``'s turn; hold it to the end."""
    await take_turns(session, record_turn(kind, record_id))


# Fields a plugin's ``crm2_resolve_entity`` names a record's owner by, in order: deals,
# documents and payments say ``owner_id``; tasks says ``assignee_id`` (documents reads
# the same two).
OWNER_FIELDS = ("owner_id", "assignee_id")


def record_owner(found: Mapping[str, Any] | None) -> uuid.UUID | None:
    """The owner of a record as its plugin answered ``crm2_resolve_entity``; ``None`` when
    it names none (or not a user id)."""
    for field in OWNER_FIELDS:
        raw = (found or {}).get(field)
        if raw:
            try:
                return uuid.UUID(str(raw))
            except ValueError:
                return None
    return None
