"""Documents over HTTP with only the core and this plugin: metadata CRUD, lists, bad input."""

from __future__ import annotations

import re
from typing import Any

from crm2_documents.schemas.documents import DocumentCreate, Tag, Title
from documents_kit import API, PDF, Docs
from pydantic import TypeAdapter, ValidationError


async def test_create_get_update_list_and_events(docs: Docs) -> None:
    agent = await docs.user("agent")
    created = await docs.client.post(
        f"{API}/documents",
        json={"title": "Motor policy", "kind": "policy", "tags": ["motor"]},
        headers=agent.headers,
    )
    assert created.status_code == 201, created.text
    document = created.json()
    assert created.headers["Location"] == f"{API}/documents/{document['id']}"
    assert document["owner_id"] == str(agent.id) and document["current_version"] == 0
    got = await docs.get(agent, document["id"])
    assert got.headers["ETag"] == '"v1"'
    changed = await docs.client.patch(
        f"{API}/documents/{document['id']}",
        json={"title": "Motor policy 2027", "tags": ["motor", "renewal"]},
        headers={**agent.headers, "If-Match": '"v1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    stale = await docs.client.patch(
        f"{API}/documents/{document['id']}",
        json={"title": "x"},
        headers={**agent.headers, "If-Match": '"v1"'},
    )
    assert stale.status_code == 412
    missing = await docs.client.patch(
        f"{API}/documents/{document['id']}", json={"title": "x"}, headers=agent.headers
    )
    assert missing.status_code == 428
    listed = await docs.client.get(
        f"{API}/documents", params={"q": "2027", "tag": "renewal"}, headers=agent.headers
    )
    assert [d["id"] for d in listed.json()["items"]] == [document["id"]]
    types = [e.type for e in await docs.events()]
    assert "documents.document.created" in types and "documents.document.updated" in types


async def test_idempotency_key_replays_the_create(docs: Docs) -> None:
    agent = await docs.user("agent")
    headers = {**agent.headers, "Idempotency-Key": "doc-1"}
    body = {"title": "Once", "kind": "other"}
    first = await docs.client.post(f"{API}/documents", json=body, headers=headers)
    again = await docs.client.post(f"{API}/documents", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert len(await docs.events("documents.document.created")) == 1


async def test_cursor_pagination_and_filters(docs: Docs) -> None:
    agent = await docs.user("agent")
    for i in range(5):
        await docs.create(agent, title=f"Paged {i}", kind="invoice" if i % 2 else "other")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await docs.client.get(f"{API}/documents", params=params, headers=agent.headers)
        assert page.status_code == 200, page.text
        seen += [d["id"] for d in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5
    invoices = await docs.client.get(
        f"{API}/documents", params={"kind": "invoice"}, headers=agent.headers
    )
    assert len(invoices.json()["items"]) == 2
    bad = await docs.client.get(f"{API}/documents", params={"kindd": "x"}, headers=agent.headers)
    assert bad.status_code == 400


async def test_bad_input_is_a_precise_4xx(docs: Docs) -> None:
    agent = await docs.user("agent")
    for body, code in (
        ({"title": "", "kind": "other"}, 422),
        ({"title": "x", "kind": "nope"}, 422),
        ({"title": "x\u0000y", "kind": "other"}, 422),
        ({"title": "x", "kind": "other", "extra": 1}, 422),
        ({"title": "x", "link": {"kind": "deals.client", "id": "not-a-uuid"}}, 422),
    ):
        response = await docs.client.post(f"{API}/documents", json=body, headers=agent.headers)
        assert response.status_code == code, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    linked = await docs.client.post(
        f"{API}/documents",
        json={"title": "x", "link": {"kind": "deals.client", "id": str(agent.id)}},
        headers=agent.headers,
    )
    assert linked.status_code == 422 and "link" in linked.json()["type"]
    assert (await docs.events()) == []


async def test_soft_delete_restore_and_viewer_cannot_write(docs: Docs) -> None:
    agent, manager, viewer = (
        await docs.user("agent"),
        await docs.user("manager"),
        await docs.user("viewer"),
    )
    document = await docs.create(agent)
    assert (
        await docs.client.post(
            f"{API}/documents", json={"title": "v", "kind": "other"}, headers=viewer.headers
        )
    ).status_code == 403
    assert (
        await docs.client.delete(f"{API}/documents/{document['id']}", headers=agent.headers)
    ).status_code == 403
    gone = await docs.client.delete(f"{API}/documents/{document['id']}", headers=manager.headers)
    assert gone.status_code == 204
    assert (await docs.get(manager, document["id"])).status_code == 404
    deleted = await docs.client.get(
        f"{API}/documents", params={"deleted": "true"}, headers=manager.headers
    )
    assert [d["id"] for d in deleted.json()["items"]] == [document["id"]]
    assert deleted.json()["items"][0]["purge_after"] is not None
    back = await docs.client.post(
        f"{API}/documents/{document['id']}/restore", headers=manager.headers
    )
    assert back.status_code == 200 and back.json()["deleted_at"] is None
    assert (await docs.get(agent, document["id"])).status_code == 200


async def test_a_restore_answers_the_document_as_a_get_does(docs: Docs) -> None:
    """The restored document comes back with its newest version, as GET shows it (the
    answer said ``current: null`` for a document with a file)."""
    manager = await docs.user("manager")
    document = await docs.create(manager)
    assert (await docs.upload(manager, document["id"], PDF)).status_code == 201
    url = f"{API}/documents/{document['id']}"
    assert (await docs.client.delete(url, headers=manager.headers)).status_code == 204
    back = await docs.client.post(f"{url}/restore", headers=manager.headers)
    assert back.status_code == 200, back.text
    got = await docs.get(manager, document["id"])
    assert back.json() == got.json()
    assert back.json()["current"]["number"] == 1
    assert back.headers["ETag"] == got.headers["ETag"]


async def test_tags_are_normalised_and_hidden_characters_refused(docs: Docs) -> None:
    """A tag is what it shows: NFC, trimmed, no invisible or control characters; two tags
    that differ only by normalisation or case are the same tag."""
    agent = await docs.user("agent")
    refused = (
        ["motor\u200b"],  # zero-width space
        ["\u200bmotor"],
        ["mo\u202etor"],  # right-to-left override
        ["mo\u2060tor"],  # word joiner
        ["mo\ttor"],
        ["mo\ntor"],
        ["mo\u0085tor"],  # C1 control (next line)
        ["mo\u2028tor"],  # line separator
        ["caf\u00e9", "cafe\u0301"],  # one tag, two normalisations
        ["Motor", "motor"],  # one tag, two cases
    )
    for tags in refused:
        body = {"title": "Tagged", "kind": "other", "tags": tags}
        created = await docs.client.post(f"{API}/documents", json=body, headers=agent.headers)
        assert created.status_code == 422, (tags, created.text)
        assert created.headers["content-type"].startswith("application/problem+json")
        assert "tags" in created.text, created.text
    assert (await docs.events()) == []
    document = await docs.create(agent, tags=["  cafe\u0301 ", "Motor"])
    assert document["tags"] == ["caf\u00e9", "Motor"]
    patched = await docs.client.patch(
        f"{API}/documents/{document['id']}",
        json={"tags": ["motor\u200b"]},
        headers={**agent.headers, "If-Match": '"v1"'},
    )
    assert patched.status_code == 422, patched.text
    for wanted in ("cafe\u0301", "caf\u00e9"):
        found = await docs.client.get(
            f"{API}/documents", params={"tag": wanted}, headers=agent.headers
        )
        assert found.status_code == 200, found.text
        assert [d["id"] for d in found.json()["items"]] == [document["id"]], wanted
    hidden = await docs.client.get(
        f"{API}/documents", params={"tag": "caf\u00e9\u200b"}, headers=agent.headers
    )
    assert hidden.status_code in (400, 422), hidden.text


def test_the_documented_tag_pattern_says_what_the_server_takes() -> None:
    """The OpenAPI pattern of a tag refuses what the server refuses (a fuzzer generating
    from the document must not meet a 422 for a field it was told is valid)."""
    schema = DocumentCreate.model_json_schema()["properties"]["tags"]["items"]
    pattern = re.compile(schema["pattern"])
    samples = [
        "motor", "café", "a b", "a\u200db", "a\u200d\u200db", "日本", "e\u0301",
        "a\u200d", "\u200da", "a\u200bb", "x\x9f", " a", "a,b", "a;b", "mo\u202etor",
        "\ufeffa", "a\u2028b", "a\x00b", "a\u200d ", "a\u200d \u200db", "a\u200d\t",
    ]  # fmt: skip
    for sample in samples:
        try:
            TypeAdapter(Tag).validate_python(sample)
            taken = True
        except ValidationError:
            taken = False
        assert bool(pattern.match(sample)) == taken, repr(sample)


async def test_the_tag_filter_ignores_case_as_tag_uniqueness_does(docs: Docs) -> None:
    """Tags are one tag ignoring case, so ``?tag=`` finds them ignoring case too."""
    agent = await docs.user("agent")
    lower = await docs.create(agent, tags=["invoice"])
    upper = await docs.create(agent, tags=["STRASSE", "Été"])
    await docs.create(agent, tags=["invoices"])
    for wanted, expected in (
        ("Invoice", [lower]),
        ("INVOICE", [lower]),
        ("invoice", [lower]),
        ("strasse", [upper]),
        ("éTÉ", [upper]),
        ("e\u0301te\u0301", [upper]),  # decomposed, another case
    ):
        found = await docs.client.get(
            f"{API}/documents", params={"tag": wanted}, headers=agent.headers
        )
        assert found.status_code == 200, found.text
        assert [d["id"] for d in found.json()["items"]] == [d["id"] for d in expected], wanted
    # a changed tag is found by its new spelling, not the old one
    patched = await docs.client.patch(
        f"{API}/documents/{lower['id']}",
        json={"tags": ["Receipt"]},
        headers={**agent.headers, "If-Match": '"v1"'},
    )
    assert patched.status_code == 200, patched.text
    for wanted, expected in (("RECEIPT", [lower["id"]]), ("invoice", [])):
        found = await docs.client.get(
            f"{API}/documents", params={"tag": wanted}, headers=agent.headers
        )
        assert [d["id"] for d in found.json()["items"]] == expected, wanted


async def test_titles_and_the_search_are_normalised(docs: Docs) -> None:
    """A title is stored NFC and trimmed; ``q`` is read the same way, so a composed search
    finds a decomposed title and the other way round."""
    agent = await docs.user("agent")
    decomposed = await docs.create(agent, title="  Re\u0301sume\u0301 2027 ")
    assert decomposed["title"] == "R\u00e9sum\u00e9 2027"
    composed = await docs.create(agent, title="Caf\u00e9 menu")
    for q, expected in (
        ("r\u00e9sum\u00e9", decomposed),
        ("RE\u0301SUME\u0301", decomposed),
        ("  r\u00e9sum\u00e9  ", decomposed),
        ("cafe\u0301", composed),
        ("CAF\u00c9", composed),
    ):
        found = await docs.client.get(f"{API}/documents", params={"q": q}, headers=agent.headers)
        assert found.status_code == 200, found.text
        assert [d["id"] for d in found.json()["items"]] == [expected["id"]], q
    patched = await docs.client.patch(
        f"{API}/documents/{composed['id']}",
        json={"title": " Cafe\u0301 carte\t"},
        headers={**agent.headers, "If-Match": '"v1"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Caf\u00e9 carte"
    for body in ({"title": "   "}, {"title": "\u3000\t"}, {"title": "a\u0000b"}):
        refused = await docs.client.post(
            f"{API}/documents", json={**body, "kind": "other"}, headers=agent.headers
        )
        assert refused.status_code == 422, (body, refused.text)


async def test_the_search_case_folds_as_tags_do(docs: Docs) -> None:
    """``q`` folds case the way tags do (``strasse`` finds ``Straße``), on both databases,
    in titles and in tags."""
    agent = await docs.user("agent")
    street = await docs.create(agent, title="Hauptstra\u00dfe 5 lease")
    tagged = await docs.create(agent, title="Lease", tags=["Gro\u00dfhandel"])
    greek = await docs.create(agent, title="\u039f\u0394\u039f\u03a3 contract")  # ΟΔΟΣ
    for q, expected in (
        ("strasse", [street]),
        ("STRASSE", [street]),
        ("stra\u00dfe", [street]),
        ("STRA\u1e9eE", [street]),  # capital sharp s
        ("grosshandel", [tagged]),
        ("\u03bf\u03b4\u03bf\u03c2", [greek]),  # final sigma
        ("\u03bf\u03b4\u03bf\u03c3", [greek]),
    ):
        found = await docs.client.get(f"{API}/documents", params={"q": q}, headers=agent.headers)
        assert found.status_code == 200, found.text
        assert [d["id"] for d in found.json()["items"]] == [d["id"] for d in expected], q


async def test_titles_refuse_hidden_and_bidi_characters_as_tags_do(docs: Docs) -> None:
    """A title shows what it holds: an invisible or bidi control character is a 422
    naming it, on create and on edit (document and kind titles), and nothing changes."""
    admin, agent = await docs.user("admin"), await docs.user("agent")
    for title, code in (
        ("Invoice\u202e4202", "U+202E"),  # right-to-left override
        ("In\u200bvoice", "U+200B"),  # zero-width space
        ("\u2066Invoice\u2069", "U+2066"),  # isolate
        ("Invoice\u200d", "U+200D"),  # a joiner joins nothing at the end
        ("In\nvoice", "U+000A"),
        ("In\u2028voice", "U+2028"),
    ):
        created = await docs.client.post(
            f"{API}/documents", json={"title": title, "kind": "other"}, headers=agent.headers
        )
        assert created.status_code == 422, (title, created.text)
        assert created.headers["content-type"].startswith("application/problem+json")
        assert code in created.text and "title" in created.text, created.text
        kind = await docs.client.post(
            f"{API}/kinds",
            json={"key": "odd", "title": title, "allowed_types": ["application/pdf"]},
            headers=admin.headers,
        )
        assert kind.status_code == 422 and code in kind.text, (title, kind.text)
    document = await docs.create(agent, title="Family \U0001f468\u200d\U0001f469 policy")
    patched = await docs.client.patch(
        f"{API}/documents/{document['id']}",
        json={"title": "Invoice\u202e"},
        headers={**agent.headers, "If-Match": '"v1"'},
    )
    assert patched.status_code == 422 and "U+202E" in patched.text, patched.text
    assert (await docs.get(agent, document["id"])).json()["title"] == document["title"]
    renamed = await docs.client.patch(
        f"{API}/kinds/other",
        json={"title": "Other\u200b"},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert renamed.status_code == 422 and "U+200B" in renamed.text, renamed.text
    assert [e.type for e in await docs.events()] == ["documents.document.created"]


def test_the_documented_title_pattern_says_what_the_server_takes() -> None:
    """As for tags: the OpenAPI pattern of a title refuses what the server refuses."""
    schema = DocumentCreate.model_json_schema()["properties"]["title"]
    pattern = re.compile(schema["pattern"])
    samples = [
        "Motor policy", " Motor ", "a\tb", "a\t", "\ta", "a\u200db", "a\u200d", "\u200da",
        "a\u200d b", "a\u200d\u200db", "a \u200d", "a\u200bb", "x\x9f", "a\u202eb", "\ufeffa",
        "a\u2028b", "a\x85", "a\x85b", "日本", "e\u0301", "a\nb", "a\n",
    ]  # fmt: skip
    for sample in samples:
        try:
            TypeAdapter(Title).validate_python(sample)
            taken = True
        except ValidationError:
            taken = False
        assert bool(pattern.match(sample)) == taken, repr(sample)


async def test_a_documents_versions_are_a_cursor_paginated_list(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent)
    for n in range(5):
        uploaded = await docs.upload(agent, document["id"], PDF + str(n).encode())
        assert uploaded.status_code == 201, uploaded.text
    url = f"{API}/documents/{document['id']}/versions"
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await docs.client.get(url, params=params, headers=agent.headers)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= 2
        seen += [v["number"] for v in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert seen == [5, 4, 3, 2, 1]  # newest first
    bad = await docs.client.get(url, params={"limit": "0"}, headers=agent.headers)
    assert bad.status_code in (400, 422) and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    schema = docs.app.app.openapi()["paths"]["/api/v1/documents/documents/{document_id}/versions"]
    names = {p["name"] for p in schema["get"]["parameters"]}
    assert {"limit", "cursor"} <= names


async def test_a_document_linked_to_itself_or_into_a_cycle_is_422(docs: Docs) -> None:
    """Owner-following stops in a cycle, but A → A or A → B → C → A is no record's file:
    a 422 naming the cycle, nothing changed. A chain without a cycle is fine."""
    manager = await docs.user("manager")
    a, b, c = [await docs.create(manager, title=t) for t in "ABC"]

    async def link(document: dict[str, Any], to: dict[str, Any]) -> Any:
        current = (await docs.get(manager, document["id"])).json()
        return await docs.client.patch(
            f"{API}/documents/{document['id']}",
            json={"link": {"kind": "documents.document", "id": to["id"]}},
            headers={**manager.headers, "If-Match": f'"v{current["version"]}"'},
        )

    itself = await link(a, a)
    assert itself.status_code == 422, itself.text
    assert itself.headers["content-type"].startswith("application/problem+json")
    assert itself.json()["type"].endswith("documents-link-cycle")
    assert "itself" in itself.json()["detail"]
    assert (await link(b, a)).status_code == 200  # B → A
    back = await link(a, b)  # A → B → A
    assert back.status_code == 422 and a["id"] in back.json()["detail"], back.text
    assert (await link(c, b)).status_code == 200  # C → B → A
    around = await link(a, c)  # A → C → B → A
    assert around.status_code == 422 and "through 1 more" in around.json()["detail"], around.text
    unchanged = (await docs.get(manager, a["id"])).json()
    assert (unchanged["link"], unchanged["version"]) == (None, 1)
