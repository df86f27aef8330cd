"""``crm2 seed demo``: small generated documents, downloadable, added once."""

from __future__ import annotations

import inspect
from typing import Any

from documents_kit import API, Docs


async def seed_demo(app: Any) -> None:
    for _plugin, result in app.context.plugins.call("crm2_seed", name="demo", context=app.context):
        if inspect.isawaitable(result):
            await result


async def test_demo_documents_are_real_files_and_seeded_once(docs: Docs) -> None:
    admin = await docs.user("admin")
    await seed_demo(docs.app)
    await seed_demo(docs.app)
    listed = (await docs.client.get(f"{API}/documents", headers=admin.headers)).json()["items"]
    assert len(listed) == 2 and {d["kind"] for d in listed} == {"policy", "identity"}
    for document in listed:
        got = await docs.client.get(
            f"{API}/documents/{document['id']}/download", headers=admin.headers
        )
        assert got.status_code == 200 and got.content.startswith(b"%PDF-1.4")
        assert got.headers["etag"] == f'"{document["current"]["sha256"]}"'
