"""Visibility: another agent's document answers 404 on every id-bearing route, never data."""

from __future__ import annotations

from typing import Any

import pytest
from documents_kit import API, PDF, Docs


async def test_another_agent_gets_404_everywhere(docs: Docs) -> None:
    owner, other, manager = (
        await docs.user("agent"),
        await docs.user("agent"),
        await docs.user("manager"),
    )
    document = await docs.create(owner)
    doc_id = document["id"]
    assert (await docs.upload(owner, doc_id, PDF)).status_code == 201
    routes = [
        ("GET", f"{API}/documents/{doc_id}", None),
        ("PATCH", f"{API}/documents/{doc_id}", {"title": "mine now"}),
        ("GET", f"{API}/documents/{doc_id}/versions", None),
        ("GET", f"{API}/documents/{doc_id}/versions/1", None),
        ("GET", f"{API}/documents/{doc_id}/download", None),
        ("POST", f"{API}/documents/{doc_id}/signed-url", {}),
    ]
    for method, url, body in routes:
        headers = {**other.headers, "If-Match": '"v2"'}
        response = await docs.client.request(method, url, json=body, headers=headers)
        assert response.status_code == 404, (method, url, response.text)
        assert doc_id not in response.text or "no document" in response.text
    upload = await docs.upload(other, doc_id, PDF + b"other")
    assert upload.status_code == 404
    listed = await docs.client.get(f"{API}/documents", headers=other.headers)
    assert listed.json()["items"] == []
    # holders of documents:all_records see it
    assert (await docs.get(manager, doc_id)).status_code == 200
    everyone = await docs.client.get(f"{API}/documents", headers=manager.headers)
    assert [d["id"] for d in everyone.json()["items"]] == [doc_id]
    assert len(docs.stored_files()) == 1


async def test_kinds_are_admin_managed(docs: Docs) -> None:
    admin, agent = await docs.user("admin"), await docs.user("agent")
    listed = await docs.client.get(f"{API}/kinds", headers=agent.headers)
    assert {k["key"] for k in listed.json()} >= {
        "policy",
        "contract",
        "identity",
        "invoice",
        "other",
    }
    body = {"key": "medical", "title": "Medical", "allowed_types": ["application/pdf"]}
    assert (
        await docs.client.post(f"{API}/kinds", json=body, headers=agent.headers)
    ).status_code == 403
    made = await docs.client.post(f"{API}/kinds", json=body, headers=admin.headers)
    assert made.status_code == 201 and made.headers["Location"] == f"{API}/kinds/medical"
    again = await docs.client.post(f"{API}/kinds", json=body, headers=admin.headers)
    assert again.status_code == 409
    unknown = {**body, "key": "x", "allowed_types": ["application/x-evil"]}
    assert (
        await docs.client.post(f"{API}/kinds", json=unknown, headers=admin.headers)
    ).status_code == 422
    off = await docs.client.patch(
        f"{API}/kinds/medical",
        json={"active": False},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert off.status_code == 200 and off.json()["active"] is False
    refused = await docs.client.post(
        f"{API}/documents", json={"title": "x", "kind": "medical"}, headers=agent.headers
    )
    assert refused.status_code == 422
    status = await docs.client.get(f"{API}/backends", headers=admin.headers)
    assert status.status_code == 200 and status.json()["backends"][0]["name"] == "local"
    assert (await docs.client.get(f"{API}/backends", headers=agent.headers)).status_code == 403


async def test_an_owner_change_moves_updated_at_as_any_other_change(docs: Docs) -> None:
    """A document handed to another user (``crm2_reassign_user``, or its record's new
    owner) is updated: its ``updated_at`` moves with its version, so the list's default
    order (``-updated_at``) and a client syncing by it see the change."""
    import uuid
    from datetime import timedelta

    from crm2_documents.models import Document
    from crm2_documents.repository.documents import follow_owner
    from crm2_documents.service.documents import reassign_user
    from sqlalchemy import update

    from crm2_core.api import utcnow

    first, second, third = [await docs.user("agent") for _ in range(3)]
    document = await docs.create(first, title="Handed over")
    document_id = uuid.UUID(document["id"])
    long_ago = utcnow() - timedelta(days=3)

    async def updated_at() -> Any:
        async with docs.app.context.session_factory() as session:
            found = await session.get(Document, document_id)
            assert found is not None
            return found.updated_at

    async def backdate(link: dict[str, Any] | None = None) -> None:
        async with docs.app.context.session_factory() as session:
            await session.execute(
                update(Document)
                .where(Document.id == document_id)  # type: ignore[arg-type]
                .values(updated_at=long_ago, **(link or {}))
            )
            await session.commit()

    await backdate()
    async with docs.app.context.session_factory() as session:
        assert await reassign_user(session, first.id, second.id, None) == 1
        await session.commit()
    assert await updated_at() > long_ago + timedelta(days=2)
    await backdate({"link_kind": "deals.client", "link_id": "c1"})
    async with docs.app.context.session_factory() as session:
        assert await follow_owner(session, "deals.client", "c1", third.id) == [document_id]
        await session.commit()
    assert await updated_at() > long_ago + timedelta(days=2)


async def test_handing_over_a_users_documents_reads_them_in_bounded_pages(
    docs: Docs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``crm2_reassign_user`` moves every document of the user, one ``documents.document.updated``
    event each, reading them a page at a time (a user with 100,000 documents must not
    be loaded into memory at once)."""
    from crm2_documents.repository import documents as repo
    from crm2_documents.service.documents import reassign_user
    from sqlalchemy import event

    monkeypatch.setattr(repo, "REASSIGN_PAGE", 2, raising=False)
    first, second = await docs.user("agent"), await docs.user("agent")
    made = {(await docs.create(first))["id"] for _ in range(5)}
    kept = await docs.create(second)
    selects: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM documents_document" in statement and statement.lstrip().startswith("SELECT"):
            selects.append(statement)

    engine = docs.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with docs.app.context.session_factory() as session:
            assert await reassign_user(session, first.id, second.id, None) == 5
            await session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert selects and all("LIMIT" in s.upper() for s in selects), selects
    assert len(selects) >= 3  # 5 documents in pages of 2
    events = [e for e in await docs.events("documents.document.updated") if str(e.subject) in made]
    assert sorted(str(e.subject) for e in events) == sorted(made)
    assert all(e.data["changed"] == ["owner_id"] for e in events)
    assert all(e.data["owner_id"] == str(second.id) for e in events)
    for document_id in made | {kept["id"]}:
        found = await docs.get(second, document_id)
        assert found.json()["owner_id"] == str(second.id)
