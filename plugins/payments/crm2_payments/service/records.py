"""Linked records: the turn a payment's link and its owner handlers take.

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

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import take_turns


def record_turn(kind: str, record_id: str) -> int:
    """The advisory lock key of one linked record (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"payments-record/{kind}/{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def take_record_turn(session: AsyncSession, kind: str, record_id: str) -> None:
    """Wait for the transactions holding ``kind``/``record_id``'s turn; hold it to the end."""
    await take_turns(session, record_turn(kind, record_id))
