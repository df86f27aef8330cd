"""``take_turns``: transactions that check, then write, one after the other.

On PostgreSQL two transactions can both check ("no admin would be left", "the set is
completed") before either writes; ``pg_advisory_xact_lock`` on a key of theirs, held
to the commit, makes them take turns. SQLite needs nothing: its transactions begin
IMMEDIATE, which already serialises them.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def take_turns(session: AsyncSession, key: int) -> None:
    """Wait for the other transactions holding ``key`` (a 64-bit integer); hold it until
    this one ends."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
