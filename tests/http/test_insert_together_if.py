"""``insert_together_if``: rows written only when a condition holds in the statement that
writes them, sent at once as a transaction of its own (a create's guess, checked in its
write); ``False`` and nothing written otherwise, and wherever it cannot go alone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.db.together import insert_together, insert_together_if, new_row
from crm2_core.testing import Crm2TestApp, sent_to_postgresql

# built once, as a caller's condition must be (its statement is cached per condition)
KNOWN = exists(select(col(User.id)).where(col(User.email) == bindparam("known_email")))


def _users(*emails: str) -> list[Any]:
    return [new_row(User, email=email, password_hash="not-a-hash") for email in emails]


async def _if_known(session: AsyncSession, email: str, *emails: str) -> bool:
    """Users ``emails``, written only if a user ``email`` exists."""
    return await insert_together_if(session, _users(*emails), KNOWN, {"known_email": email})


async def _stored(crm2: Crm2TestApp, *emails: str) -> list[str]:
    stmt = select(col(User.email)).where(col(User.email).in_(emails)).order_by(col(User.email))
    async with crm2.context.session_factory() as other:
        return list((await other.execute(stmt)).scalars())


def _kinds(sent: list[str]) -> list[str]:
    return [statement.split()[0].upper().rstrip(";") for statement in sent]


def _on_postgresql(crm2: Crm2TestApp) -> bool:
    return crm2.context.engine.dialect.name == "postgresql"


async def test_rows_written_alone_when_the_condition_holds(crm2: Crm2TestApp) -> None:
    """One statement, no ``BEGIN``/``COMMIT``: the rows are committed as it ends (another
    session sees them before this one's commit, which sends nothing)."""
    admin = await crm2.user("admin")
    async with crm2.context.session_factory() as session:
        with sent_to_postgresql() as sent:
            wrote = await _if_known(session, admin.email, "if-1@example.com", "if-2@example.com")
        seen_before_commit = await _stored(crm2, "if-1@example.com", "if-2@example.com")
        with sent_to_postgresql() as at_commit:
            await session.commit()
    if not _on_postgresql(crm2):
        assert wrote is False and seen_before_commit == []
        assert await _stored(crm2, "if-1@example.com") == []
        return
    assert wrote is True
    assert _kinds(sent) == ["WITH"] and at_commit == [], (sent, at_commit)
    assert seen_before_commit == ["if-1@example.com", "if-2@example.com"]


async def test_nothing_written_when_it_does_not_hold_and_the_session_goes_on(
    crm2: Crm2TestApp,
) -> None:
    """``False``: not one of the rows is written; the session is as it was, and its usual
    write (held to the commit) goes alone there as ever."""
    async with crm2.context.session_factory() as session:
        with sent_to_postgresql() as sent:
            wrote = await _if_known(
                session, "nobody@example.com", "no-1@example.com", "no-2@example.com"
            )
            await insert_together(session, _users("usual-1@example.com", "usual-2@example.com"))
            await session.commit()
    assert wrote is False
    assert await _stored(crm2, "no-1@example.com", "no-2@example.com") == []
    assert await _stored(crm2, "usual-1@example.com", "usual-2@example.com") == [
        "usual-1@example.com",
        "usual-2@example.com",
    ]
    if _on_postgresql(crm2):
        assert _kinds(sent) == ["WITH", "WITH"], sent  # the guarded one, then the usual one


async def test_a_session_that_has_begun_is_refused_without_a_statement(
    crm2: Crm2TestApp,
) -> None:
    """After a write of the session's transaction went out, the rows could not be atomic
    with it: ``False``, nothing sent, and the transaction's own write still rolls back."""
    admin = await crm2.user("admin")
    async with crm2.context.session_factory() as session:
        session.add(User(email="first@example.com", password_hash="not-a-hash"))
        await session.flush()
        with sent_to_postgresql() as sent:
            wrote = await _if_known(
                session, admin.email, "late-1@example.com", "late-2@example.com"
            )
        await session.rollback()
    assert wrote is False and sent == []
    assert await _stored(crm2, "first@example.com", "late-1@example.com") == []


async def test_an_orm_change_waiting_for_a_flush_is_refused_without_a_statement(
    crm2: Crm2TestApp,
) -> None:
    """An object added but not flushed (application sessions do not autoflush) would
    be written later, outside the rows' own transaction: ``False``, nothing sent.
    ORM objects as the rows themselves are refused outright."""
    admin = await crm2.user("admin")
    async with crm2.context.session_factory() as session:
        session.add(User(email="pending@example.com", password_hash="not-a-hash"))
        with sent_to_postgresql() as sent:
            wrote = await _if_known(
                session, admin.email, "after-1@example.com", "after-2@example.com"
            )
        await session.rollback()
    assert wrote is False and sent == []
    assert await _stored(crm2, "pending@example.com", "after-1@example.com") == []
    if _on_postgresql(crm2):
        async with crm2.context.session_factory() as session:
            orm = [User(email="orm-row@example.com", password_hash="not-a-hash")]
            with pytest.raises(TypeError):
                await insert_together_if(session, orm, KNOWN, {"known_email": admin.email})
