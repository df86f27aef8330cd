"""Transaction-scoped locks that make a check and the write it leads to one step.

On PostgreSQL two transactions can both check ("nothing underway", "the set is
completed") before either writes; ``pg_advisory_xact_lock`` (held to commit) makes them
take turns. SQLite needs nothing: its transactions begin IMMEDIATE, which already
serialises them.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# pg_advisory_xact_lock keys: "crm2bkst" and "crm2bkdr" as 64-bit integers.
SET_REQUESTS = int.from_bytes(b"crm2bkst", "big") - 2**63
# drill and restore runs starting on a set, and retention choosing the sets it prunes
SET_READERS = int.from_bytes(b"crm2bkdr", "big") - 2**63


async def one_at_a_time(session: AsyncSession, key: int) -> None:
    """Wait for the other transactions holding ``key``; hold it until this one ends."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
