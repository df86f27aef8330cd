"""Who sees every document honours ``crm2_check_permission``, as deals' rule does.

``documents:all_records`` was read from the caller's roles alone
(``service.visibility(principal)``): a plugin that denied it a manager still let them
list, read, change, download and delete every owner's documents. A hook's ``True``
(or ``None``) leaves it to the roles: it widens no one.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from crm2_documents.visibility import RULES
from documents_kit import API, PDF, Docs, make_docs

from crm2_core.api import resolve_entity
from crm2_core.testing import PermissionVotes
from crm2_hookspecs import Principal

ALL_RECORDS = "documents:all_records"


async def _app(crm2_app_factory: Any, root: Path) -> tuple[Docs, PermissionVotes]:
    rule = PermissionVotes(ALL_RECORDS, depends=("documents",))  # a branch rule
    docs = await make_docs(
        crm2_app_factory, root, plugins=["documents", rule.name], extra_plugins=(rule,)
    )
    return docs, rule


def _principal(user_id: uuid.UUID, role: str, *permissions: str) -> Principal:
    return Principal(
        id=user_id,
        kind="user",
        roles=frozenset({role}),
        permissions=frozenset({"documents:read", *permissions}),
    )


async def test_a_manager_a_hook_denies_all_records_sees_only_their_own_documents(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    docs, rule = await _app(crm2_app_factory, tmp_path / "files")
    manager, agent = await docs.user("manager"), await docs.user("agent")
    theirs = await docs.create(agent)
    doc_id = theirs["id"]
    assert (await docs.upload(agent, doc_id, PDF)).status_code == 201
    rule.votes[manager.id] = False
    mine = await docs.create(manager)
    h = manager.headers

    listed = await docs.client.get(f"{API}/documents", headers=h)
    assert [d["id"] for d in listed.json()["items"]] == [mine["id"]], listed.text
    routes = [
        ("GET", f"{API}/documents/{doc_id}", None),
        ("PATCH", f"{API}/documents/{doc_id}", {"title": "mine now"}),
        ("GET", f"{API}/documents/{doc_id}/versions", None),
        ("GET", f"{API}/documents/{doc_id}/versions/1", None),
        ("GET", f"{API}/documents/{doc_id}/download", None),
        ("POST", f"{API}/documents/{doc_id}/signed-url", {}),
        ("DELETE", f"{API}/documents/{doc_id}", None),
    ]
    for method, url, body in routes:
        headers = {**h, "If-Match": '"v2"'}
        answer = await docs.client.request(method, url, json=body, headers=headers)
        assert answer.status_code == 404, (method, url, answer.text)
    assert (await docs.upload(manager, doc_id, PDF + b"more")).status_code == 404
    confined = _principal(manager.id, "manager", ALL_RECORDS)
    context = docs.app.context
    assert await resolve_entity(context, "documents.document", doc_id, confined) is None

    rule.votes[manager.id] = True  # the hook decides per request; True leaves it to the roles
    assert (await docs.get(manager, doc_id)).status_code == 200
    listed = await docs.client.get(f"{API}/documents", headers=h)
    assert {d["id"] for d in listed.json()["items"]} == {mine["id"], doc_id}


async def test_a_signed_url_stops_once_a_hook_denies_its_issuer_all_records(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    docs, rule = await _app(crm2_app_factory, tmp_path / "files")
    manager, agent = await docs.user("manager"), await docs.user("agent")
    theirs = await docs.create(agent)
    assert (await docs.upload(agent, theirs["id"], PDF)).status_code == 201
    signed = await docs.client.post(
        f"{API}/documents/{theirs['id']}/signed-url", json={}, headers=manager.headers
    )
    assert signed.status_code in (200, 201), signed.text
    url = signed.json()["url"]
    assert (await docs.client.get(url)).status_code == 200
    rule.votes[manager.id] = False
    assert (await docs.client.get(url)).status_code == 404


async def test_a_hook_that_says_yes_gives_an_agent_no_one_elses_documents(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    docs, rule = await _app(crm2_app_factory, tmp_path / "files")
    agent, other = await docs.user("agent"), await docs.user("agent")
    rule.votes[agent.id] = True
    theirs = await docs.create(other)
    assert (await docs.get(agent, theirs["id"])).status_code == 404
    listed = await docs.client.get(f"{API}/documents", headers=agent.headers)
    assert listed.json()["items"] == []


async def test_the_stream_follows_the_hook(crm2_app_factory: Any, tmp_path: Path) -> None:
    docs, rule = await _app(crm2_app_factory, tmp_path / "files")
    manager, agent = await docs.user("manager"), await docs.user("agent")
    principal = _principal(manager.id, "manager", ALL_RECORDS)
    event = {"data": {"owner_id": str(agent.id)}}
    assert await RULES.can_see(principal, event, docs.app.context)
    rule.votes[manager.id] = False
    assert not await RULES.can_see(principal, event, docs.app.context)
