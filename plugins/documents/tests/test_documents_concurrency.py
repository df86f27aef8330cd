"""Requests that race: each gets the answer it would get alone, never a 500 or a 412 for
an If-Match it did not send (PostgreSQL runs them at once; SQLite one after the other)."""

from __future__ import annotations

import asyncio

from documents_kit import API, PDF, Docs


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
