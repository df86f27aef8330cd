"""Chains of documents linked to documents: the cycle check is one bounded query, and
everything that follows links ends on a cycle made before the cycle rule existed
(inserted here straight into the table, as such a database holds it)."""

from __future__ import annotations

import uuid
from typing import Any

from crm2_documents.models import Document
from crm2_documents.service.documents import LINK_DEPTH_LIMIT, publish_owner_change
from documents_kit import API, Docs, User
from sqlalchemy import event

DOCUMENT = "documents.document"


async def insert_chain(docs: Docs, owners: list[User], links: list[int | None]) -> list[uuid.UUID]:
    """Documents ``0…n-1`` written straight to the table, document ``i`` owned by
    ``owners[i % len(owners)]`` and linked to document ``links[i]`` (``None``: unlinked),
    with no check of any kind: as links made before the cycle rule were."""
    ids = [uuid.uuid4() for _ in links]
    async with docs.app.context.session_factory() as session:
        for i, (document_id, to) in enumerate(zip(ids, links, strict=True)):
            owner = owners[i % len(owners)]
            session.add(
                Document(
                    id=document_id,
                    title=f"Chain {i}",
                    kind="other",
                    link_kind=DOCUMENT if to is not None else None,
                    link_id=str(ids[to]) if to is not None else None,
                    owner_id=owner.id,
                    creator_id=owner.id,
                )
            )
        await session.commit()
    return ids


async def link(docs: Docs, user: User, document_id: Any, to: Any) -> Any:
    current = await docs.client.get(f"{API}/documents/{document_id}", headers=user.headers)
    assert current.status_code == 200, current.text
    return await docs.client.patch(
        f"{API}/documents/{document_id}",
        json={"link": {"kind": DOCUMENT, "id": str(to)}},
        headers={**user.headers, "If-Match": f'"v{current.json()["version"]}"'},
    )


def count_selects(docs: Docs) -> tuple[list[str], Any]:
    selects: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "documents_document" in statement and statement.lstrip().upper().startswith(
            ("SELECT", "WITH")
        ):
            selects.append(statement)

    engine = docs.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    return selects, lambda: event.remove(engine, "before_cursor_execute", capture)


async def test_the_cycle_check_walks_a_long_chain_in_one_query(docs: Docs) -> None:
    """Linking to the head of a chain of 40 documents reads the chain with one query (a
    recursive CTE), not one query per link; a link back into the chain is still refused,
    naming how far round the cycle goes."""
    manager = await docs.user("manager")
    n = 40
    ids = await insert_chain(docs, [manager], [i - 1 if i else None for i in range(n)])
    head, tail = ids[-1], ids[0]  # head → … → tail
    fresh = await docs.create(manager, title="Fresh")
    selects, stop = count_selects(docs)
    try:
        linked = await link(docs, manager, fresh["id"], head)
    finally:
        stop()
    assert linked.status_code == 200, linked.text
    assert len(selects) <= 6, len(selects)  # the request's reads, not 40 of them
    back = await link(docs, manager, tail, fresh["id"])  # tail → fresh → head → … → tail
    assert back.status_code == 422, back.text
    assert back.json()["type"].endswith("documents-link-cycle")
    assert f"through {n - 1} more" in back.json()["detail"], back.text


async def test_a_chain_past_the_limit_is_a_clear_422(docs: Docs) -> None:
    """The walk is bounded: linking to the head of a chain of ``LINK_DEPTH_LIMIT`` links or
    more is a 422 saying so, and linking further down it still works."""
    manager = await docs.user("manager")
    n = LINK_DEPTH_LIMIT + 5
    ids = await insert_chain(docs, [manager], [i - 1 if i else None for i in range(n)])
    fresh = await docs.create(manager, title="Fresh")
    refused = await link(docs, manager, fresh["id"], ids[-1])
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("documents-link-chain-too-long")
    assert str(LINK_DEPTH_LIMIT) in refused.json()["detail"]
    assert (await link(docs, manager, fresh["id"], ids[10])).status_code == 200


async def test_a_cycle_made_before_the_rule_ends_every_walk(docs: Docs) -> None:
    """A → B → C → A already in the table: linking a fresh document to A ends (200), as
    does listing, reading and deleting them; closing a second cycle through it is a 422."""
    manager = await docs.user("manager")
    a, b, c = await insert_chain(docs, [manager], [1, 2, 0])
    fresh = await docs.create(manager, title="Fresh")
    assert (await link(docs, manager, fresh["id"], a)).status_code == 200
    again = await link(docs, manager, c, fresh["id"])  # C → fresh → A → B → C
    assert again.status_code == 422 and "through 2 more" in again.json()["detail"], again.text
    listed = await docs.client.get(
        f"{API}/documents", params={"link_kind": DOCUMENT}, headers=manager.headers
    )
    assert listed.status_code == 200 and len(listed.json()["items"]) == 4, listed.text
    for document_id in (a, b, c):
        assert (await docs.get(manager, str(document_id))).status_code == 200
    gone = await docs.client.delete(f"{API}/documents/{b}", headers=manager.headers)
    assert gone.status_code == 204, gone.text
    await docs.app.settle_events()


async def test_owner_following_ends_on_a_cycle_made_before_the_rule(docs: Docs) -> None:
    """A ↔ B already in the table with different owners, then an event of each
    published before any handler ran, carrying its document's owner of the time.
    Following those owners blindly, each event would hand the other document an owner that sends
    the next event back: two owners chasing each other round the cycle for ever. The
    handler follows what the document's owner is now, so the chain settles on one."""
    first, second = await docs.user("agent"), await docs.user("agent")
    manager = await docs.user("manager")
    a, b = await insert_chain(docs, [first, second], [1, 0])
    async with docs.app.context.session_factory() as session:
        for document_id, owner in ((a, first), (b, second)):  # both before any handler runs
            document = await session.get(Document, document_id)
            assert document is not None
            publish_owner_change(session, document, owner.id)
        await session.commit()
    await docs.app.settle_events(within=10)
    owners = {(await docs.get(manager, str(d))).json()["owner_id"] for d in (a, b)}
    assert len(owners) == 1, owners


async def test_a_link_id_that_is_no_uuid_ends_the_chain(docs: Docs) -> None:
    """A document link written before link ids were checked (``legacy-7``, an id in
    capitals) ends the walk or is followed as the id it names: never a failed cast (a 500
    on PostgreSQL)."""
    manager = await docs.user("manager")
    [old, upper] = await insert_chain(docs, [manager], [None, 0])
    async with docs.app.context.session_factory() as session:
        row = await session.get(Document, old)
        assert row is not None
        row.link_kind, row.link_id = DOCUMENT, "legacy-7"
        row_upper = await session.get(Document, upper)
        assert row_upper is not None
        row_upper.link_id = str(old).upper()
        await session.commit()
    fresh = await docs.create(manager, title="Fresh")
    linked = await link(docs, manager, fresh["id"], upper)  # fresh → upper → old → (legacy-7)
    assert linked.status_code == 200, linked.text
    back = await link(docs, manager, old, fresh["id"])  # old → fresh → upper → OLD
    assert back.status_code == 422 and "through 1 more" in back.json()["detail"], back.text
