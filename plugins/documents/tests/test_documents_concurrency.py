"""Requests that race: each gets the answer it would get alone, never a 500 or a 412 for
an If-Match it did not send (PostgreSQL runs them at once; SQLite one after the other)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from crm2_documents.service.documents import record_turn
from crm2_documents.storage.local import LocalBackend
from crm2_documents.storage.registry import storage_of
from documents_kit import API, PDF, Docs
from sqlalchemy import text

from crm2_core.testing import waits_for_lock

# The most the race tests wait for anything.
BOUND = 30.0


async def test_concurrent_uploads_to_one_record_take_turns(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent)
    sent = [PDF + bytes([i]) for i in range(4)]
    answers = await asyncio.gather(*[docs.upload(agent, document["id"], data) for data in sent])
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert sorted(a.json()["number"] for a in answers) == [1, 2, 3, 4]
    assert (await docs.get(agent, document["id"])).json()["current_version"] == 4
    # the same file sent twice at once: one is kept, the other is the duplicate (409)
    again = await asyncio.gather(*[docs.upload(agent, document["id"], PDF + b"same") for _ in "ab"])
    assert sorted(a.status_code for a in again) == [201, 409], [a.text for a in again]
    assert len(docs.stored_files()) == 5


async def test_concurrent_creates_of_one_kind_are_one_201_and_409s(docs: Docs) -> None:
    admin = await docs.user("admin")
    body = {"key": "race", "title": "Race", "allowed_types": ["application/pdf"]}
    answers = await asyncio.gather(
        *[docs.client.post(f"{API}/kinds", json=body, headers=admin.headers) for _ in range(3)]
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409], [a.text for a in answers]


async def test_two_transfers_of_one_version_at_once_are_one_202_and_a_409(
    docs: Docs, tmp_path: Path
) -> None:
    """Both requests read the version stored, then write: the move is conditional on the
    version as read, so the second is a 409 naming the move queued, not a second 202
    that silently replaced the first's target. On PostgreSQL a row lock held here lets
    both read before either writes; SQLite's writers take turns."""
    backends = storage_of(docs.app.context).backends
    for name in ("east", "west"):
        backends[name] = LocalBackend(tmp_path / name, name=name)
    agent, admin = await docs.user("agent"), await docs.user("admin")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    url = f"{API}/documents/{document['id']}/versions/1"

    def move(to: str) -> asyncio.Task[Any]:
        send = docs.client.post(f"{url}/transfer", json={"backend": to}, headers=admin.headers)
        return asyncio.create_task(send)

    if docs.app.context.engine.dialect.name == "postgresql":
        async with docs.app.context.engine.connect() as holder:
            await holder.execute(
                text("SELECT id FROM documents_version FOR UPDATE")  # the one version
            )
            tasks = [move("east"), move("west")]
            waited = await waits_for_lock(docs.app.context.engine, tasks, waiters=2, bound=BOUND)
            await holder.rollback()
        assert waited, "the two requests did not both come to write"
    else:
        tasks = [move("east"), move("west")]
    answers = [await asyncio.wait_for(t, BOUND) for t in tasks]
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409], [a.text for a in answers]
    [won] = [a.json() for a in answers if a.status_code == 202]
    [lost] = [a.json() for a in answers if a.status_code == 409]
    assert won["target_backend"] in lost["detail"], lost
    current = (await docs.client.get(url, headers=admin.headers)).json()
    assert (current["state"], current["target_backend"]) == ("transferring", won["target_backend"])


async def test_two_links_that_close_a_cycle_together_are_a_200_and_a_422(docs: Docs) -> None:
    """A → B and B → A asked at once: each alone sees no cycle. Links to documents take
    one turn, so the second sees the first's and is refused. PostgreSQL only (SQLite's
    writers take turns); both requests are held here at their record's lock, then let go
    together."""
    if docs.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: no link runs beside another")
    manager = await docs.user("manager")
    a, b = await docs.create(manager, title="A"), await docs.create(manager, title="B")

    def link(document: dict[str, Any], to: dict[str, Any]) -> asyncio.Task[Any]:
        send = docs.client.patch(
            f"{API}/documents/{document['id']}",
            json={"link": {"kind": "documents.document", "id": to["id"]}},
            headers={**manager.headers, "If-Match": '"v1"'},
        )
        return asyncio.create_task(send)

    async with docs.app.context.engine.connect() as holder:
        for target in (a, b):
            key = record_turn("documents.document", target["id"])
            await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            tasks = [link(a, b), link(b, a)]
            waited = await waits_for_lock(docs.app.context.engine, tasks, waiters=2, bound=BOUND)
        finally:
            await holder.execute(text("SELECT pg_advisory_unlock_all()"))
            await holder.commit()
    assert waited, "the two links did not both come to wait"
    answers = [await asyncio.wait_for(t, BOUND) for t in tasks]
    assert sorted(a.status_code for a in answers) == [200, 422], [a.text for a in answers]


@pytest.mark.parametrize("meanwhile", ["deleted", "handed over"])
async def test_an_upload_waiting_its_turn_while_its_document_goes_is_a_404(
    docs: Docs, meanwhile: str
) -> None:
    """An upload waits for the one before it under the same record (its turn); a delete,
    or a link that hands the document to another owner, committed meanwhile wins: the
    upload is a 404 and keeps nothing, never a version added to a deleted document or by
    someone who no longer sees it. PostgreSQL only (SQLite's writers take turns)."""
    from crm2_documents.service.versions import _upload_turn

    if docs.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: no delete runs beside an upload")
    agent, manager = await docs.user("agent"), await docs.user("manager")
    document = await docs.create(agent)
    elsewhere = await docs.create(await docs.user("agent"))
    turn = _upload_turn(type("Unlinked", (), {"link_kind": None, "id": document["id"]})())
    async with docs.app.context.engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": turn})
        try:
            upload = asyncio.create_task(docs.upload(agent, document["id"]))
            waited = await waits_for_lock(docs.app.context.engine, upload, bound=BOUND)
            url = f"{API}/documents/{document['id']}"
            if meanwhile == "deleted":
                gone = await docs.client.delete(url, headers=manager.headers)
            else:
                link = {"kind": "documents.document", "id": elsewhere["id"]}
                gone = await docs.client.patch(
                    url, json={"link": link}, headers={**manager.headers, "If-Match": '"v1"'}
                )
        finally:
            await holder.execute(text("SELECT pg_advisory_unlock_all()"))
            await holder.commit()
    assert waited, "the upload did not come to wait for its turn"
    assert gone.status_code in (200, 204), gone.text
    answer = await asyncio.wait_for(upload, BOUND)
    assert answer.status_code == 404, answer.text
    assert answer.json()["type"].endswith("documents-document-not-found")
    await asyncio.sleep(0.2)  # the stored file's removal runs once the transaction ended
    assert docs.stored_files() == []
