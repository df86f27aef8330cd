"""``insert_together``'s statement held until the session's commit (``db.held``): sent
there alone when it is all the transaction writes (no ``BEGIN``/``COMMIT`` on the wire),
ahead of anything else otherwise, in one transaction with it; forgotten by a rollback."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.db.direct import execute_in_session
from crm2_core.db.together import insert_together, new_row
from crm2_core.testing import Crm2TestApp, sent_to_postgresql


@pytest.fixture
def postgresql(crm2: Crm2TestApp) -> Crm2TestApp:
    if crm2.context.engine.dialect.name != "postgresql":
        pytest.skip("a held write is PostgreSQL's (SQLite writes one by one, in order)")
    return crm2


def _users(*emails: str) -> list[Any]:
    return [new_row(User, email=email, password_hash="not-a-hash") for email in emails]


def _emails(*emails: str) -> Any:
    return select(col(User.email)).where(col(User.email).in_(emails)).order_by(col(User.email))


async def _stored(crm2: Crm2TestApp, *emails: str) -> list[str]:
    async with crm2.context.session_factory() as other:
        return list((await other.execute(_emails(*emails))).scalars())


def _kinds(sent: list[str]) -> list[str]:
    """Each statement sent, by its first word (``WITH``: the rows' one statement)."""
    return [statement.split()[0].upper().rstrip(";") for statement in sent]


async def test_a_read_then_the_write_alone_are_two_round_trips(postgresql: Crm2TestApp) -> None:
    """A create's shape: one read, then every row in one statement, sent at the commit
    without a transaction block; until then nobody sees the rows, then both."""
    crm2 = postgresql
    async with crm2.context.session_factory() as session:
        with sent_to_postgresql() as sent:
            read = select(col(User.email)).limit(1)
            seen = await execute_in_session(session, read, reads_only=True)
            await insert_together(session, _users("alone-1@example.com", "alone-2@example.com"))
        assert _kinds(sent) == ["SELECT"]  # the write waits for the commit
        assert await _stored(crm2, "alone-1@example.com") == []
        with sent_to_postgresql() as at_commit:
            await session.commit()
    assert isinstance(seen, list)
    assert _kinds(at_commit) == ["WITH"]
    assert await _stored(crm2, "alone-1@example.com", "alone-2@example.com") == [
        "alone-1@example.com",
        "alone-2@example.com",
    ]


async def test_a_statement_after_it_runs_in_one_transaction_with_it(
    postgresql: Crm2TestApp,
) -> None:
    """The held write goes first, inside the transaction the next statement needs; the
    next statement sees it; a rollback then leaves neither."""
    crm2 = postgresql
    async with crm2.context.session_factory() as session:
        with sent_to_postgresql() as sent:
            await insert_together(session, _users("tx-1@example.com", "tx-2@example.com"))
            got = await execute_in_session(session, _emails("tx-1@example.com"))
            also = (await session.execute(_emails("tx-2@example.com"))).scalars().all()
            await session.rollback()
    assert got == [("tx-1@example.com",)] and also == ["tx-2@example.com"]
    assert _kinds(sent)[:3] == ["BEGIN", "WITH", "SELECT"]
    assert _kinds(sent)[-1] == "ROLLBACK"
    assert await _stored(crm2, "tx-1@example.com", "tx-2@example.com") == []


async def test_orm_changes_after_it_commit_with_it(postgresql: Crm2TestApp) -> None:
    """An ORM object added after the held write (``publish`` adds one): the commit's
    flush writes it after the held statement, in one transaction."""
    crm2 = postgresql
    async with crm2.context.session_factory() as session:
        with sent_to_postgresql() as sent:
            await insert_together(session, _users("orm-1@example.com", "orm-2@example.com"))
            session.add(User(email="orm-3@example.com", password_hash="not-a-hash"))
            await session.commit()
    kinds = _kinds(sent)
    assert kinds[:2] == ["BEGIN", "WITH"] and kinds[-1] == "COMMIT", kinds
    assert await _stored(crm2, "orm-1@example.com", "orm-2@example.com", "orm-3@example.com") == [
        "orm-1@example.com",
        "orm-2@example.com",
        "orm-3@example.com",
    ]


async def test_two_creates_in_one_session_are_one_transaction(postgresql: Crm2TestApp) -> None:
    """A seed or a command writing twice before its commit: the first write is sent when
    the second's statements begin, the second in the same transaction."""
    crm2 = postgresql
    async with crm2.context.session_factory() as session:
        with sent_to_postgresql() as sent:
            await insert_together(session, _users("seed-1@example.com", "seed-2@example.com"))
            await insert_together(session, _users("seed-3@example.com", "seed-4@example.com"))
            await session.commit()
    assert _kinds(sent) == ["BEGIN", "WITH", "WITH", "COMMIT"]
    assert len(await _stored(crm2, *(f"seed-{n}@example.com" for n in range(1, 5)))) == 4


async def test_a_rollback_or_close_forgets_it(postgresql: Crm2TestApp) -> None:
    crm2 = postgresql
    sessions = crm2.context.session_factory
    with sent_to_postgresql() as sent:
        async with sessions() as session:
            await insert_together(session, _users("gone-1@example.com", "gone-2@example.com"))
            await session.rollback()
            await session.commit()  # the session works on, with nothing held
        async with sessions() as session:
            await insert_together(session, _users("gone-3@example.com", "gone-4@example.com"))
    assert "WITH" not in _kinds(sent)
    assert await _stored(crm2, *(f"gone-{n}@example.com" for n in range(1, 5))) == []


async def test_its_error_surfaces_at_the_commit_and_writes_nothing(
    postgresql: Crm2TestApp,
) -> None:
    """A constraint the held statement breaks: ``IntegrityError`` from the commit (the
    problem handlers' 409), and none of its rows written."""
    crm2 = postgresql
    await crm2.create_user("viewer", email="taken-held@example.com")
    async with crm2.context.session_factory() as session:
        await insert_together(session, _users("new-held@example.com", "taken-held@example.com"))
        with pytest.raises(IntegrityError):
            await session.commit()
        await session.rollback()
    assert await _stored(crm2, "new-held@example.com") == []


async def test_a_begin_block_commits_it(postgresql: Crm2TestApp) -> None:
    crm2 = postgresql
    session: AsyncSession
    async with crm2.context.session_factory() as session, session.begin():
        await insert_together(session, _users("block-1@example.com", "block-2@example.com"))
    assert len(await _stored(crm2, "block-1@example.com", "block-2@example.com")) == 2


async def test_after_an_earlier_write_it_is_sent_at_once(postgresql: Crm2TestApp) -> None:
    """A transaction already begun (a claim, an earlier write): nothing is held."""
    crm2 = postgresql
    async with crm2.context.session_factory() as session:
        session.add(User(email="first@example.com", password_hash="not-a-hash"))
        await session.flush()
        with sent_to_postgresql() as sent:
            await insert_together(session, _users("then-1@example.com", "then-2@example.com"))
        assert _kinds(sent) == ["WITH"]
        await session.commit()
    assert len(await _stored(crm2, "first@example.com", "then-1@example.com")) == 2


async def test_a_read_not_declared_read_only_begins_the_transaction(
    postgresql: Crm2TestApp,
) -> None:
    """Without ``reads_only`` a ``SELECT`` may take a lock or call a function that writes:
    it begins the transaction as ever, and a write after it is sent at once, inside."""
    crm2 = postgresql
    async with crm2.context.session_factory() as session:
        with sent_to_postgresql() as sent:
            await execute_in_session(session, select(col(User.email)).limit(1))
            await insert_together(session, _users("begun-1@example.com", "begun-2@example.com"))
        assert _kinds(sent) == ["BEGIN", "SELECT", "WITH"]
        await session.commit()
    assert len(await _stored(crm2, "begun-1@example.com", "begun-2@example.com")) == 2


async def test_a_savepoint_after_it_comes_after_it(postgresql: Crm2TestApp) -> None:
    """Rolling back to a savepoint taken after the held write keeps the write."""
    crm2 = postgresql
    async with crm2.context.session_factory() as session:
        await insert_together(session, _users("kept-1@example.com", "kept-2@example.com"))
        savepoint = await session.begin_nested()
        session.add(User(email="dropped@example.com", password_hash="not-a-hash"))
        await session.flush()
        await savepoint.rollback()
        await session.commit()
    stored = await _stored(crm2, "kept-1@example.com", "kept-2@example.com", "dropped@example.com")
    assert stored == ["kept-1@example.com", "kept-2@example.com"]
