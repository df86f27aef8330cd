"""Documents next to deals: links resolve through deals, visibility follows the record.

Documents imports nothing of deals: links are checked with ``crm2_resolve_entity``
(with the caller's visibility) and owner changes arrive as deals' events.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from crm2_documents.schemas.documents import DocumentUpdate
from crm2_documents.service.documents import update_document
from documents_kit import API, PDF, Docs, make_docs

from crm2_core.api import EntityLink, resolve_entity
from crm2_hookspecs import PluginManifest, Principal, hookimpl

DEALS = "/api/v1/deals"


@pytest.fixture
async def both(crm2_app_factory: Any, tmp_path: Path) -> Docs:
    return await make_docs(crm2_app_factory, tmp_path / "files", plugins=["deals", "documents"])


async def test_a_document_of_a_client_follows_the_clients_owner(both: Docs) -> None:
    docs = both
    owner, other, manager = (
        await docs.user("agent"),
        await docs.user("agent"),
        await docs.user("manager"),
    )
    client = await docs.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Anna Berg"}, headers=owner.headers
    )
    assert client.status_code == 201, client.text
    link = {"kind": "deals.client", "id": client.json()["id"]}
    # another agent cannot link to a client hidden from them
    hidden = await docs.client.post(
        f"{API}/documents", json={"title": "ID", "link": link}, headers=other.headers
    )
    assert hidden.status_code == 422
    # a manager files it: the document is the client owner's
    made = await docs.client.post(
        f"{API}/documents",
        json={"title": "ID", "kind": "identity", "link": link},
        headers=manager.headers,
    )
    assert made.status_code == 201, made.text
    document = made.json()
    assert document["owner_id"] == str(owner.id) and document["link"] == link
    assert (await docs.upload(manager, document["id"], PDF)).status_code == 201
    # the file lives in the client's folder (Drive mirrors the same folders)
    (stored,) = docs.stored_files()
    relative = stored.relative_to(docs.root).parts
    assert relative[:4] == ("records", "deals.client", link["id"], document["id"])
    assert (await docs.get(owner, document["id"])).status_code == 200
    assert (await docs.get(other, document["id"])).status_code == 404
    by_record = await docs.client.get(
        f"{API}/documents",
        params={"link_kind": "deals.client", "link_id": link["id"]},
        headers=owner.headers,
    )
    assert [d["id"] for d in by_record.json()["items"]] == [document["id"]]
    # the client changes hands: its documents follow (deals.client.updated carries owner_id)
    client_now = await docs.client.get(f"{DEALS}/clients/{link['id']}", headers=manager.headers)
    moved = await docs.client.patch(
        f"{DEALS}/clients/{link['id']}",
        json={"owner_id": str(other.id)},
        headers={**manager.headers, "If-Match": client_now.headers["ETag"]},
    )
    assert moved.status_code == 200, moved.text
    await docs.app.settle_events()
    assert (await docs.get(other, document["id"])).status_code == 200
    assert (await docs.get(owner, document["id"])).status_code == 404
    download = await docs.client.get(
        f"{API}/documents/{document['id']}/download", headers=owner.headers
    )
    assert download.status_code == 404


def _principal(user_id: uuid.UUID) -> Principal:
    return Principal(id=user_id, kind="user", roles=frozenset({"agent"}))


async def test_documents_resolve_for_other_plugins(both: Docs) -> None:
    docs = both
    owner, other = await docs.user("agent"), await docs.user("agent")
    document = await docs.create(owner)
    context, kind = docs.app.context, "documents.document"
    found = await resolve_entity(context, kind, document["id"], _principal(owner.id))
    assert found is not None and found["name"] == document["title"]
    assert await resolve_entity(context, kind, document["id"], _principal(other.id)) is None
    assert await resolve_entity(context, kind, "not-an-id", None) is None


async def test_an_older_owner_event_delivered_after_a_newer_one_does_not_win(both: Docs) -> None:
    """A worker may receive a record's owner changes out of order (two workers, a retry):
    the newer owner stays. The core applies a handler's events of one subject in log order
    (the newer waits for the older), so the handler needs no order check of its own."""
    docs = both
    first, second, third = [await docs.user("agent") for _ in range(3)]
    manager = await docs.user("manager")
    client = await docs.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Ida Holm"}, headers=first.headers
    )
    link = {"kind": "deals.client", "id": client.json()["id"]}
    document = await docs.create(manager, title="ID", link=link)
    assert document["owner_id"] == str(first.id)
    await docs.app.settle_events()
    await docs.app.relay_by_hand()  # from here the test delivers by hand, as a worker would
    url = f"{DEALS}/clients/{link['id']}"
    for user in (second, third):
        now = await docs.client.get(url, headers=manager.headers)
        moved = await docs.client.patch(
            url,
            json={"owner_id": str(user.id)},
            headers={**manager.headers, "If-Match": now.headers["ETag"]},
        )
        assert moved.status_code == 200, moved.text
    changes = [e for e in await docs.app.relay_by_hand() if e.type == "deals.client.updated"]
    older, newer = changes
    assert older.data["owner_id"] == str(second.id) and newer.data["owner_id"] == str(third.id)
    with pytest.raises(Exception) as waited:  # the newer one waits for the older
        await docs.app.deliver("documents.follow_owner", newer)
    assert type(waited.value).__name__ == "EarlierPending"
    assert await docs.app.deliver("documents.follow_owner", older) == "applied"
    assert await docs.app.deliver("documents.follow_owner", newer) == "applied"
    assert await docs.app.deliver("documents.follow_owner", older) == "duplicate"
    assert (await docs.get(third, document["id"])).status_code == 200
    assert (await docs.get(second, document["id"])).status_code == 404


async def test_a_link_made_while_the_records_owner_changes_ends_with_the_new_owner(
    both: Docs,
) -> None:
    """Linking reads the record's owner, then commits. A reassignment of the record that
    commits in between, with its event handled before the link commits, found no linked
    document to move: the document kept the old owner for good. The link and the
    handler now take turns per record, so the handler sees the link and moves it."""
    docs = both
    if docs.app.context.settings.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: the two cannot interleave")
    first, second, manager = (
        await docs.user("agent"),
        await docs.user("agent"),
        await docs.user("manager"),
    )
    client = await docs.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Per Lund"}, headers=first.headers
    )
    client_id = client.json()["id"]
    document = await docs.create(manager, title="Contract")
    await docs.app.settle_events()
    await docs.app.relay_by_hand()  # from here the test delivers by hand, as a worker would
    context = docs.app.context
    principal = Principal(
        id=manager.id, kind="user", roles=frozenset({"manager"}), permissions=frozenset({"*"})
    )
    link = EntityLink(kind="deals.client", id=uuid.UUID(client_id))
    async with context.session_factory() as session:
        linked = await update_document(
            session, context, principal, uuid.UUID(document["id"]), '"v1"',
            DocumentUpdate(link=link),
        )  # fmt: skip
        assert linked.owner_id == first.id  # read before the reassignment below
        now = await docs.client.get(f"{DEALS}/clients/{client_id}", headers=manager.headers)
        moved = await docs.client.patch(
            f"{DEALS}/clients/{client_id}",
            json={"owner_id": str(second.id)},
            headers={**manager.headers, "If-Match": now.headers["ETag"]},
        )
        assert moved.status_code == 200, moved.text
        [event] = [e for e in await docs.app.relay_by_hand() if e.type == "deals.client.updated"]
        handled = asyncio.create_task(docs.app.deliver("documents.follow_owner", event))
        # the handler now runs; with the record's turn held by the link it waits for it
        await asyncio.wait({handled}, timeout=1.0)
        await session.commit()
    assert await asyncio.wait_for(handled, 10) == "applied"
    assert (await docs.get(second, document["id"])).status_code == 200
    assert (await docs.get(first, document["id"])).status_code == 404


async def test_a_document_linked_to_a_document_follows_its_owner(both: Docs) -> None:
    """``documents.document`` is a kind a document may link to: the linked document follows
    the other's owner as it follows a client's (documents' own events carry owner_id)."""
    docs = both
    first, second, manager = (
        await docs.user("agent"),
        await docs.user("agent"),
        await docs.user("manager"),
    )
    policy = await docs.create(first, title="Policy")
    annex = await docs.create(
        manager, title="Annex", link={"kind": "documents.document", "id": policy["id"]}
    )
    assert annex["owner_id"] == str(first.id)
    client = await docs.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Lea Sand"}, headers=second.headers
    )
    # the policy goes to the client's owner: the annex goes with it
    moved = await docs.client.patch(
        f"{API}/documents/{policy['id']}",
        json={"link": {"kind": "deals.client", "id": client.json()["id"]}},
        headers={**manager.headers, "If-Match": f'"v{policy["version"]}"'},
    )
    assert moved.status_code == 200 and moved.json()["owner_id"] == str(second.id), moved.text
    await docs.app.settle_events()
    assert (await docs.get(second, annex["id"])).json()["owner_id"] == str(second.id)
    assert (await docs.get(first, annex["id"])).status_code == 404


async def test_a_record_left_without_an_owner_hands_its_documents_to_their_creators(
    both: Docs,
) -> None:
    """An event whose ``owner_id`` / ``assignee_id`` is null (a task unassigned): the linked
    documents go back to whoever filed them, as unlinking does, never kept by the owner
    the record no longer names. An event without either field changes nothing."""
    from crm2_documents.handlers import follow_owner

    docs = both
    owner, manager = await docs.user("agent"), await docs.user("manager")
    client = await docs.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Ola Nord"}, headers=owner.headers
    )
    link = {"kind": "deals.client", "id": client.json()["id"]}
    document = await docs.create(manager, title="ID", link=link)
    assert document["owner_id"] == str(owner.id)
    await docs.app.settle_events()

    async def deliver(data: dict[str, Any]) -> None:
        event = {"type": "deals.client.updated", "subject": link["id"], "data": data}
        async with docs.app.context.session_factory() as session:
            await follow_owner(session, event, docs.app.context)
            await session.commit()

    await deliver({"name": "Ola Nord"})  # says nothing of the owner
    assert (await docs.get(owner, document["id"])).json()["owner_id"] == str(owner.id)
    await deliver({"owner_id": None})
    assert (await docs.get(owner, document["id"])).status_code == 404
    assert (await docs.get(manager, document["id"])).json()["owner_id"] == str(manager.id)
    changed = await docs.events("documents.document.updated")
    assert changed[-1].data["owner_id"] == str(manager.id)
    assert changed[-1].data["changed"] == ["owner_id"]
    await deliver({"assignee_id": None})  # a redelivery: nothing left to change
    assert len(await docs.events("documents.document.updated")) == len(changed)


class Unowned:
    """A plugin whose records (``unowned.thing``) name no owner, as an unassigned task."""

    manifest = PluginManifest(name="unowned", title="Unowned (test only)")

    @hookimpl
    def crm2_resolve_entity(
        self, kind: str, id: str, principal: Principal | None, context: Any, session: Any
    ) -> Any:
        if kind != "unowned.thing":
            return None

        async def found() -> dict[str, Any]:
            return {"kind": kind, "id": id, "name": "Nobody's", "owner_id": None}

        return found()


async def test_linking_to_a_record_without_an_owner_gives_the_document_to_its_creator(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """The document goes to its creator, as a record losing its owner hands it back (the
    ``follow_owner`` rule) and as unlinking does: it used to go to whoever linked it,
    and its creator lost sight of it."""
    docs = await make_docs(
        crm2_app_factory,
        tmp_path / "files",
        plugins=["documents", "unowned"],
        extra_plugins=(Unowned(),),
    )
    creator, manager = await docs.user("agent"), await docs.user("manager")
    document = await docs.create(creator)
    nobodys = {"kind": "unowned.thing", "id": str(uuid.uuid4())}
    linked = await docs.client.patch(
        f"{API}/documents/{document['id']}",
        json={"link": nobodys},
        headers={**manager.headers, "If-Match": f'"v{document["version"]}"'},
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["owner_id"] == str(creator.id), linked.text
    assert (await docs.get(creator, document["id"])).status_code == 200
    made = await docs.create(manager, link=nobodys)  # a new one: its creator is the caller
    assert made["owner_id"] == str(manager.id)


async def test_a_duplicate_the_uploader_cannot_see_is_neither_named_nor_refused(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """Two agents' documents under one record without an owner are each their creator's:
    the second upload of the same file was a 409 naming the first agent's document, which
    the second cannot see, and confirming that it holds that very file (an oracle for any
    file's presence). A duplicate only counts among the documents the uploader sees."""
    docs = await make_docs(
        crm2_app_factory,
        tmp_path / "files",
        plugins=["documents", "unowned"],
        extra_plugins=(Unowned(),),
    )
    first, second, manager = [await docs.user(role) for role in ("agent", "agent", "manager")]
    nobodys = {"kind": "unowned.thing", "id": str(uuid.uuid4())}
    hers, his = await docs.create(first, link=nobodys), await docs.create(second, link=nobodys)
    assert (await docs.upload(first, hers["id"], PDF)).status_code == 201
    again = await docs.upload(second, his["id"], PDF)
    assert again.status_code == 201, again.text
    assert hers["id"] not in again.text
    # whoever sees both is told, as before
    theirs = await docs.create(manager, link=nobodys)
    duplicate = await docs.upload(manager, theirs["id"], PDF)
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["type"].endswith("documents-duplicate-content")
