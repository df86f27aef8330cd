"""Visibility: another agent's document answers 404 on every id-bearing route, never data."""

from __future__ import annotations

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
