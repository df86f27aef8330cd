"""Upload and download: streamed, checked, hashed; safe headers; Range; signed URLs."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from crm2_documents import signing
from crm2_documents.errors import InvalidUpload
from crm2_documents.models import Document, Kind
from crm2_documents.service.versions import store_bytes
from crm2_documents.stream import channels
from documents_kit import API, PDF, PNG, Docs, User, make_docs, seed_default_kinds
from sqlalchemy import update
from sqlmodel import col

from crm2_core.api import ConfigurationError
from crm2_core.testing.app import TEST_PASSWORD
from crm2_hookspecs import Principal


async def test_upload_then_download_with_safe_headers_and_range(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent, kind="policy")
    data = PDF + b"x" * 200_000
    uploaded = await docs.upload(agent, document["id"], data, filename="../../etc/Pölicy scan.pdf")
    assert uploaded.status_code == 201, uploaded.text
    version = uploaded.json()
    assert uploaded.headers["Location"].endswith(f"/documents/{document['id']}/versions/1")
    assert version["sha256"] == hashlib.sha256(data).hexdigest()
    assert version["size"] == len(data) and version["content_type"] == "application/pdf"
    assert version["filename"] == "Pölicy scan.pdf" and version["state"] == "stored"
    # the name never became a path: the file lives under a generated key
    [stored] = docs.stored_files()
    assert stored.read_bytes() == data and "scan" not in str(stored)
    got = await docs.client.get(f"{API}/documents/{document['id']}/download", headers=agent.headers)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith('attachment; filename="Plicy scan.pdf"')
    assert "filename*=UTF-8''P%C3%B6licy%20scan.pdf" in got.headers["content-disposition"]
    assert got.headers["etag"] == f'"{version["sha256"]}"'
    part = await docs.client.get(
        f"{API}/documents/{document['id']}/download",
        headers={**agent.headers, "Range": "bytes=5-14"},
    )
    assert part.status_code == 206 and part.content == data[5:15]
    assert part.headers["content-range"] == f"bytes 5-14/{len(data)}"
    tail = await docs.client.get(
        f"{API}/documents/{document['id']}/download",
        headers={**agent.headers, "Range": "bytes=-4"},
    )
    assert tail.content == data[-4:]
    outside = await docs.client.get(
        f"{API}/documents/{document['id']}/download",
        headers={**agent.headers, "Range": f"bytes={len(data)}-"},
    )
    assert outside.status_code == 416
    many = ",".join(f"{i}-{i}" for i in range(0, 98, 2))  # a list of ranges, 250+ characters
    huge = "9" * 5000  # past what int() takes: ignored, never a 500
    for ignored in (
        "bytes=abc",
        "items=0-1",
        "bytes=9-3",
        "null",
        f"bytes={many}",
        f"bytes={huge}-",
    ):
        whole = await docs.client.get(
            f"{API}/documents/{document['id']}/download",
            headers={**agent.headers, "Range": ignored},
        )
        assert whole.status_code == 200 and len(whole.content) == len(data), ignored
    cached = await docs.client.get(
        f"{API}/documents/{document['id']}/download",
        headers={**agent.headers, "If-None-Match": got.headers["etag"]},
    )
    assert cached.status_code == 304
    # If-None-Match compares weakly (RFC 9110 13.1.2): a proxy that weakened the ETag
    # (nginx does when it compresses), a list, or "*" still revalidate
    for sent in (f"W/{got.headers['etag']}", f'"other", {got.headers["etag"]}', "*"):
        again = await docs.client.get(
            f"{API}/documents/{document['id']}/download",
            headers={**agent.headers, "If-None-Match": sent},
        )
        assert again.status_code == 304, sent
    [added] = await docs.events("documents.document.version_added")
    assert added.data["sha256"] == version["sha256"] and added.data["number"] == 1
    shown = (await docs.get(agent, document["id"])).json()
    assert shown["current_version"] == 1 and shown["current"]["sha256"] == version["sha256"]
    listed = await docs.client.get(f"{API}/documents", headers=agent.headers)
    [item] = [d for d in listed.json()["items"] if d["id"] == document["id"]]
    assert item == shown  # the list's page (plain rows) shows what the document's GET does


async def test_a_range_outside_the_file_is_416_saying_what_exists_not_what_was_sent(
    docs: Docs,
) -> None:
    """The 416's detail never repeats the caller's Range header (caller input): it says
    which bytes the file has, and Content-Range gives its size (``bytes */<size>``,
    RFC 9110), on the signed URL as on the download."""
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"])).status_code == 201
    sent = "bytes=" + "9" * 150 + "-"
    url = f"{API}/documents/{document['id']}/download"
    outside = await docs.client.get(url, headers={**agent.headers, "Range": sent})
    assert outside.status_code == 416, outside.text
    assert outside.headers["content-type"].startswith("application/problem+json")
    assert outside.headers["content-range"] == f"bytes */{len(PDF)}"
    detail = outside.json()["detail"]
    assert "9" * 10 not in detail and "bytes=" not in detail, detail
    assert f"0-{len(PDF) - 1}" in detail and str(len(PDF)) in detail, detail
    signed = await docs.client.post(
        f"{API}/documents/{document['id']}/signed-url", json={"version": 1}, headers=agent.headers
    )
    by_url = await docs.client.get(signed.json()["url"], headers={"Range": "bytes=-0"})
    assert by_url.status_code == 416 and "bytes=" not in by_url.json()["detail"], by_url.text
    assert by_url.headers["content-range"] == f"bytes */{len(PDF)}"


async def test_too_large_is_413_and_leaves_nothing(
    crm2_app_factory: object, tmp_path: Path
) -> None:
    docs = await make_docs(crm2_app_factory, tmp_path / "files", max_upload_bytes=100_000)
    agent = await docs.user("agent")
    document = await docs.create(agent)
    big = PDF + b"y" * 300_000
    refused = await docs.upload(agent, document["id"], big)
    assert refused.status_code == 413, refused.text
    assert docs.stored_files() == []
    assert not list((tmp_path / "files").rglob("*.part"))
    assert (await docs.get(agent, document["id"])).json()["current_version"] == 0


async def test_the_limit_bounds_the_whole_body_not_only_the_file(
    crm2_app_factory: object, tmp_path: Path
) -> None:
    """Sent without Content-Length (chunked), megabytes of other form parts before a small
    file are refused once the body passes the limit, as a declared length would be."""
    docs = await make_docs(crm2_app_factory, tmp_path / "files", max_upload_bytes=100_000)
    agent = await docs.user("agent")
    document = await docs.create(agent)
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        for i in range(200):
            part = b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n' % i
            read += 1
            yield part + b"z" * 60_000 + b"\r\n"
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n" + PDF + b"\r\n--b--\r\n"
        )

    refused = await docs.client.post(
        f"{API}/documents/{document['id']}/versions",
        content=body(),
        headers={**agent.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert refused.status_code == 413, refused.text
    assert read < 10  # stopped reading at the limit, not at the end of the body
    assert docs.stored_files() == []
    assert (await docs.get(agent, document["id"])).json()["current_version"] == 0


async def test_content_is_judged_by_its_bytes(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent, kind="identity")
    cases = [
        (PNG, "photo.exe", "image/png"),  # a PNG named .exe
        (b"<html><script>alert(1)</script></html>", "me.png", "image/png"),  # HTML as an image
        (b"MZ\x90\x00" + b"\x00" * 100, "id.pdf", "application/pdf"),  # an executable
        (b"just text", "id.txt", "text/plain"),  # not allowed for identity
        (PDF, "id.pdf", "image/png"),  # declared type disagrees with the bytes
    ]
    for data, name, declared in cases:
        refused = await docs.upload(agent, document["id"], data, name, declared)
        assert refused.status_code == 415, (name, refused.text)
    assert docs.stored_files() == []
    ok = await docs.upload(agent, document["id"], PNG, "id.png", "image/png")
    assert ok.status_code == 201 and ok.json()["content_type"] == "image/png"


async def test_duplicate_content_under_one_record_is_409(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    again = await docs.upload(agent, document["id"], PDF)
    assert again.status_code == 409 and "duplicate" in again.json()["type"]
    assert len(docs.stored_files()) == 1
    other = await docs.upload(agent, document["id"], PDF + b"v2")
    assert other.status_code == 201 and other.json()["number"] == 2


async def test_malformed_uploads_are_422(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent)
    url = f"{API}/documents/{document['id']}/versions"
    no_file = await docs.client.post(url, data={"title": "x"}, headers=agent.headers)
    assert no_file.status_code in (415, 422), no_file.text
    json_body = await docs.client.post(url, json={"file": "x"}, headers=agent.headers)
    assert json_body.status_code == 422
    broken = await docs.client.post(
        url,
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF',
        headers={**agent.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert broken.status_code == 422
    long = "b" * 71  # RFC 2046 allows 70 characters; python-multipart refuses past 256
    for boundary in (long, "b" * 300):
        too_long = await docs.client.post(
            url,
            content=f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="a.pdf"\r\n\r\n%PDF-1.4\n\r\n--{boundary}--\r\n'.encode(),
            headers={**agent.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert too_long.status_code == 422, too_long.text
        assert "boundary" in too_long.json()["detail"]
    assert docs.stored_files() == []


async def test_an_empty_file_is_422_and_stores_nothing(docs: Docs) -> None:
    """Zero bytes are no document: not a text/plain version (whose every Range is 416),
    nor a 415 naming text/plain for a kind without it, but a 422 that says so."""
    agent = await docs.user("agent")
    for kind, filename in (("other", "notes.txt"), ("policy", "scan.pdf"), ("other", "x")):
        document = await docs.create(agent, kind=kind)
        empty = await docs.upload(agent, document["id"], b"", filename=filename)
        assert empty.status_code == 422, empty.text
        assert empty.headers["content-type"].startswith("application/problem+json")
        assert empty.json()["type"].endswith("documents-invalid-upload")
        assert "empty" in empty.json()["detail"]
        assert (await docs.get(agent, document["id"])).json()["current_version"] == 0
    assert docs.stored_files() == [] and await docs.events("documents.document.version_added") == []


async def test_server_code_cannot_attach_an_empty_file_either(docs: Docs) -> None:
    """``store_bytes`` (seeds, jobs) follows the upload's rule: zero bytes are a 422
    ``documents-invalid-upload`` with nothing stored or recorded, not a 0-byte version."""
    agent = await docs.user("agent")
    created = await docs.create(agent)
    async with docs.app.context.session_factory() as session:
        document = await session.get(Document, uuid.UUID(created["id"]))
        assert document is not None
        with pytest.raises(InvalidUpload, match="empty"):
            await store_bytes(session, docs.app.context, document, "empty.pdf", b"")
        await session.commit()
    assert (await docs.get(agent, created["id"])).json()["current_version"] == 0
    assert docs.stored_files() == [] and await docs.events("documents.document.version_added") == []


async def test_the_body_after_the_file_is_read_and_bounded(docs: Docs) -> None:
    """Parts after the file are read (the request ends before the upload is recorded)
    but bounded, as a part's header line is."""
    agent = await docs.user("agent")
    document = await docs.create(agent)
    url = f"{API}/documents/{document['id']}/versions"
    headers = {**agent.headers, "Content-Type": "multipart/form-data; boundary=xyz"}
    file_part = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n" + PDF + b"\r\n"
    )
    note = b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'

    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    trailing = await docs.client.post(
        url, content=chunks(file_part, note, b"--xyz--\r\n"), headers=headers
    )
    assert trailing.status_code == 201, trailing.text
    endless = await docs.client.post(
        url,
        content=chunks(file_part, b"--xyz--\r\n", *[b"e" * 16_384] * 8),
        headers=headers,
    )
    assert endless.status_code == 422, endless.text
    assert "past the file" in endless.json()["detail"]
    long_header = b"--xyz\r\nX-Filler: " + b"f" * 10_000 + b"\r\n" + file_part[7:]
    refused = await docs.client.post(
        url, content=chunks(long_header, b"--xyz--\r\n"), headers=headers
    )
    assert refused.status_code == 413, refused.text  # test_a_parts_headers_are_bounded…
    assert "header line may be at most" in refused.json()["detail"]
    assert len(docs.stored_files()) == 1


async def test_a_file_name_keeps_no_hidden_or_reordering_characters(docs: Docs) -> None:
    """C1 controls, the bidi override that shows "fdp.exe" as "exe.pdf" and line separators
    become "_"; the joiners some scripts need stay."""
    agent = await docs.user("agent")
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.pdf"  # a ZWNJ inside the word
    for sent, kept in (
        ("bad\u0085name\u009b.pdf", "bad_name_.pdf"),
        ("invoice\u202efdp.exe.pdf", "invoice_fdp.exe.pdf"),
        ("a\u2028b.pdf", "a_b.pdf"),
        (persian, persian),
    ):
        document = await docs.create(agent)
        answer = await docs.upload(agent, document["id"], PDF + sent.encode(), filename=sent)
        assert answer.status_code == 201, answer.text
        assert answer.json()["filename"] == kept


async def test_upload_honours_idempotency_key(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent)
    headers = {"Idempotency-Key": "up-1"}
    first = await docs.upload(agent, document["id"], PDF, headers=headers)
    again = await docs.upload(agent, document["id"], PDF, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"]
    assert len(docs.stored_files()) == 1


async def test_another_file_of_the_same_length_under_the_same_key_is_422(docs: Docs) -> None:
    """The key stands for the bytes sent, not their length (the body is hashed as it streams)."""
    agent = await docs.user("agent")
    document = await docs.create(agent)
    headers = {"Idempotency-Key": "up-2"}
    first = await docs.upload(agent, document["id"], PDF, headers=headers)
    other_pdf = PDF.replace(b"obj", b"OBJ")
    assert len(other_pdf) == len(PDF)
    other = await docs.upload(agent, document["id"], other_pdf, headers=headers)
    assert first.status_code == 201, first.text
    assert other.status_code == 422, other.text
    assert other.json()["type"] == "urn:crm2:problem:idempotency-key-reused"
    versions = await docs.client.get(
        f"{API}/documents/{document['id']}/versions", headers=agent.headers
    )
    assert [v["number"] for v in versions.json()["items"]] == [1]
    assert len(docs.stored_files()) == 1


def test_a_signing_key_shorter_than_32_bytes_is_refused() -> None:
    from crm2_documents.config import DocumentsSettings
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 32 bytes"):
        DocumentsSettings(signing_key="short-and-guessable")  # type: ignore[arg-type]
    chosen = DocumentsSettings(signing_key="k" * 32)  # type: ignore[arg-type]
    assert chosen.signing_key is not None


async def test_signed_urls(docs: Docs) -> None:
    agent, other = await docs.user("agent"), await docs.user("agent")
    document = await docs.create(agent)
    await docs.upload(agent, document["id"], PDF)
    url = f"{API}/documents/{document['id']}/signed-url"
    signed = await docs.client.post(url, json={"expires_in": 60}, headers=agent.headers)
    assert signed.status_code == 200, signed.text
    link = signed.json()["url"]
    opened = await docs.client.get(link)  # no credentials
    assert opened.status_code == 200 and opened.content == PDF
    assert opened.headers["content-disposition"].startswith("attachment")
    tampered = link.replace(document["id"][:8], "00000000")
    assert (await docs.client.get(tampered)).status_code == 403
    flipped = link[:-1] + ("0" if link[-1] != "0" else "1")
    assert (await docs.client.get(flipped)).status_code == 403
    expired_at = int(time.time()) - 1
    version_id = link.split("?")[0].rsplit("/", 1)[1]
    key = signing.signing_key(docs.app.context)
    good = signing.sign(key, uuid.UUID(document["id"]), uuid.UUID(version_id), expired_at, agent.id)
    expired = link.split("?")[0] + f"?expires={expired_at}&by={agent.id}&signature={good}"
    assert (await docs.client.get(expired)).status_code == 403
    # nobody mints one for a document they cannot read
    assert (await docs.client.post(url, json={}, headers=other.headers)).status_code == 404


async def test_a_signed_download_answers_304_to_its_etag(docs: Docs) -> None:
    """If-None-Match holding the file's ETag is 304 with no body (RFC 9110 13.1.2),
    through a signed URL as through the authenticated download."""
    agent = await docs.user("agent")
    document = await docs.create(agent)
    await docs.upload(agent, document["id"], PDF)
    url = f"{API}/documents/{document['id']}/signed-url"
    link = (await docs.client.post(url, json={}, headers=agent.headers)).json()["url"]
    first = await docs.client.get(link)
    assert first.status_code == 200
    etag = first.headers["etag"]
    again = await docs.client.get(link, headers={"If-None-Match": f"W/{etag}"})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = await docs.client.get(link, headers={"If-None-Match": '"not-it"'})
    assert other.status_code == 200 and other.content == PDF
    # the signature is still checked first: a tampered URL is 403, never 304
    flipped = link[:-1] + ("0" if link[-1] != "0" else "1")
    tampered = await docs.client.get(flipped, headers={"If-None-Match": etag})
    assert tampered.status_code == 403


async def test_a_signed_url_dies_with_its_issuers_right_to_read(docs: Docs) -> None:
    """A signed URL carries who asked for it: it stops at once when that user is disabled
    or may no longer see the document, as their tokens would."""
    admin = await docs.user("admin")
    agent, other = await docs.user("agent"), await docs.user("agent")
    mine, moved = await docs.create(agent), await docs.create(agent)
    links = {}
    for document in (mine, moved):
        assert (await docs.upload(agent, document["id"], PDF + document["id"].encode())).is_success
        signed = await docs.client.post(
            f"{API}/documents/{document['id']}/signed-url", json={}, headers=agent.headers
        )
        links[document["id"]] = signed.json()["url"]
        assert (await docs.client.get(links[document["id"]])).status_code == 200
    # the document now belongs to someone else the agent cannot see
    async with docs.app.context.session_factory() as session:
        await session.execute(
            update(Document)
            .where(col(Document.id) == uuid.UUID(moved["id"]))
            .values(owner_id=other.id)
        )
        await session.commit()
    assert (await docs.client.get(links[moved["id"]])).status_code == 404
    assert (await docs.client.get(links[mine["id"]])).status_code == 200
    # the issuer is disabled
    url = f"/api/v1/auth/users/{agent.id}"
    etag = (await docs.client.get(url, headers=admin.headers)).headers["etag"]
    disabled = await docs.client.patch(
        url, json={"is_active": False}, headers={**admin.headers, "If-Match": etag}
    )
    assert disabled.status_code == 200, disabled.text
    assert (await docs.client.get(links[mine["id"]])).status_code == 403
    # and the issuer cannot be swapped for someone who may read it: the signature covers it
    swapped = links[mine["id"]].replace(f"by={agent.id}", f"by={admin.id}")
    assert swapped != links[mine["id"]]
    assert (await docs.client.get(swapped)).status_code == 403


async def test_a_signed_url_made_with_an_api_key_dies_with_the_key(docs: Docs) -> None:
    """A URL made with an API key names the key, not its creator: revoking or expiring the
    key stops the URLs it made at once, and they see only what the key sees (its role's
    rights on its creator's documents), never the creator's wider rights."""
    admin, other = await docs.user("admin"), await docs.user("agent")
    made = await docs.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "portal", "role": "agent", "current_password": TEST_PASSWORD},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    key_id, key = made.json()["id"], {"Authorization": f"Bearer {made.json()['key']}"}
    links = {}
    for name in ("revoked", "moved"):
        document = await docs.create(admin, title=name)
        assert (await docs.upload(admin, document["id"], PDF + name.encode())).is_success
        signed = await docs.client.post(
            f"{API}/documents/{document['id']}/signed-url", json={}, headers=key
        )
        assert signed.status_code == 200, signed.text
        links[name] = (document["id"], signed.json()["url"])
        assert f"key={key_id}" in links[name][1] and str(admin.id) not in links[name][1]
        assert (await docs.client.get(links[name][1])).status_code == 200
    # the document goes to someone the key (an agent's rights) may not see, though its
    # creator, an admin, still may
    async with docs.app.context.session_factory() as session:
        await session.execute(
            update(Document)
            .where(col(Document.id) == uuid.UUID(links["moved"][0]))
            .values(owner_id=other.id)
        )
        await session.commit()
    assert (await docs.client.get(links["moved"][1])).status_code == 404
    # the issuer cannot be swapped for the key's creator: the signature covers it
    swapped = links["revoked"][1].replace(f"key={key_id}", f"by={admin.id}")
    assert (await docs.client.get(swapped)).status_code == 403
    revoked = await docs.client.delete(f"/api/v1/auth/api-keys/{key_id}", headers=admin.headers)
    assert revoked.status_code == 204, revoked.text
    gone = await docs.client.get(links["revoked"][1])
    assert gone.status_code == 403, gone.text
    assert gone.json()["type"].endswith("documents-bad-signature")


async def test_uploads_are_streamed_past_the_cores_body_limit(docs: Docs) -> None:
    """The upload route reads its body as a stream (STREAMED_BODY): CRM2_MAX_BODY_BYTES
    (1 MiB by default) bounds buffered JSON bodies, not files."""
    agent = await docs.user("agent")
    document = await docs.create(agent)
    big = PDF + b"b" * 1_500_000
    assert (await docs.upload(agent, document["id"], big)).status_code == 201
    json_body = await docs.client.post(
        f"{API}/documents", json={"title": "x" * 1_500_000}, headers=agent.headers
    )
    assert json_body.status_code == 413


async def test_the_stream_shows_a_document_only_to_who_may_see_it(docs: Docs) -> None:
    [channel] = channels()
    owner, other, manager = (
        await docs.user("agent"),
        await docs.user("agent"),
        await docs.user("manager"),
    )
    await docs.create(owner)
    [event] = await docs.events("documents.document.created")
    assert channel.can_see is not None and channel.matches(event.type)
    for user, expected in ((owner, True), (other, False), (manager, True)):
        perms = {"documents:all_records"} if user is manager else set()
        principal = Principal(
            id=user.id, kind="user", roles=frozenset(), permissions=frozenset(perms)
        )
        assert await channel.can_see(principal, {"data": event.data}, None) is expected


async def test_a_deactivated_kind_takes_no_new_versions(docs: Docs) -> None:
    """Inactive: no new documents or versions of that kind; what exists stays readable."""
    admin, agent = await docs.user("admin"), await docs.user("agent")
    document = await docs.create(agent, kind="invoice")
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    kind = await docs.client.get(f"{API}/kinds/invoice", headers=admin.headers)
    off = await docs.client.patch(
        f"{API}/kinds/invoice",
        json={"active": False},
        headers={**admin.headers, "If-Match": kind.headers["etag"]},
    )
    assert off.status_code == 200, off.text
    refused = await docs.upload(agent, document["id"], PDF + b"% second\n")
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("documents-kind-inactive")
    assert docs.stored_files() and len(docs.stored_files()) == 1  # nothing kept
    got = await docs.get(agent, document["id"])
    assert got.json()["current_version"] == 1
    download = await docs.client.get(
        f"{API}/documents/{document['id']}/download", headers=agent.headers
    )
    assert download.status_code == 200 and download.content == PDF


async def test_no_kind_may_accept_html_or_executables(docs: Docs) -> None:
    """A kind allowing HTML or an executable would take one named without an extension
    (``page``), and a download would hand it out as text/html: refused (422) when a kind is
    made or changed, and nothing changes."""
    admin = await docs.user("admin")
    for types in (
        ["text/html"],
        ["application/pdf", "application/x-msdownload"],
        ["application/x-executable"],
    ):
        made = await docs.client.post(
            f"{API}/kinds",
            json={"key": "web", "title": "Web", "allowed_types": types},
            headers=admin.headers,
        )
        assert made.status_code == 422, (types, made.text)
        assert made.headers["content-type"].startswith("application/problem+json")
        changed = await docs.client.patch(
            f"{API}/kinds/other",
            json={"allowed_types": types},
            headers={**admin.headers, "If-Match": '"v1"'},
        )
        assert changed.status_code == 422, (types, changed.text)
    assert (await docs.client.get(f"{API}/kinds/web", headers=admin.headers)).status_code == 404
    other = await docs.client.get(f"{API}/kinds/other", headers=admin.headers)
    assert "text/html" not in other.json()["allowed_types"] and other.json()["version"] == 1
    # a kind stored before this rule still takes none
    async with docs.app.context.session_factory() as session:
        await session.execute(
            update(Kind).where(col(Kind.key) == "other").values(allowed_types=["text/html"])
        )
        await session.commit()
    document = await docs.create(admin, kind="other")
    html = b"<html><script>1</script></html>"
    page = await docs.upload(admin, document["id"], html, "page", "text/html")
    assert page.status_code == 415, page.text
    assert docs.stored_files() == []


async def test_json_routes_really_answer_the_413_and_415_they_declare(docs: Docs) -> None:
    """signed-url and transfer read JSON through the core's body guard: a body past the
    limit is 413 and another media type 415, so the document keeps declaring both."""
    admin = await docs.user("admin")
    document = await docs.create(admin)
    await docs.upload(admin, document["id"], PDF)
    paths = docs.app.app.openapi()["paths"]
    for path in ("/signed-url", "/versions/1/transfer"):
        template = "/api/v1/documents/documents/{document_id}" + path.replace("1", "{number}")
        assert {"413", "415"} <= set(paths[template]["post"]["responses"])
        url = f"{API}/documents/{document['id']}{path}"
        json_headers = {**admin.headers, "content-type": "application/json"}
        big = b'{"a": "' + b"x" * 3_000_000 + b'"}'
        too_large = await docs.client.post(url, content=big, headers=json_headers)
        assert too_large.status_code == 413, too_large.text
        text = {**admin.headers, "content-type": "text/plain"}
        refused = await docs.client.post(url, content=b"hello", headers=text)
        assert refused.status_code == 415, refused.text


async def test_a_parts_headers_are_bounded_in_count_and_size(docs: Docs) -> None:
    """Each part's headers are bounded on their own (not only by the body limit): more
    than MAX_PART_HEADERS lines, or one line longer than MAX_PART_HEADER_BYTES, is a
    413 that says which, and nothing is kept."""
    from crm2_documents.upload import MAX_PART_HEADER_BYTES, MAX_PART_HEADERS

    agent = await docs.user("agent")
    document = await docs.create(agent)
    url = f"{API}/documents/{document['id']}/versions"
    disposition = 'Content-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
    many = "".join(f"X-Extra-{n}: {n}\r\n" for n in range(MAX_PART_HEADERS))
    long = f"X-Long: {'a' * MAX_PART_HEADER_BYTES}\r\n"
    huge = f"X-Huge: {'a' * 100_000}\r\n"  # past python-multipart's own bound too
    bounds = ((many, f"at most {MAX_PART_HEADERS} headers"), (long, "bytes long"))
    for extra, says in (*bounds, (huge, "bytes long")):
        for part in (f"{disposition}{extra}", f"{extra}{disposition}"):
            refused = await docs.client.post(
                url,
                content=f"--b\r\n{part}\r\n%PDF-1.4\n\r\n--b--\r\n".encode(),
                headers={**agent.headers, "Content-Type": "multipart/form-data; boundary=b"},
            )
            assert refused.status_code == 413, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert says in refused.json()["detail"], refused.json()
    fits = "".join(f"X-Extra-{n}: {n}\r\n" for n in range(MAX_PART_HEADERS - 2))
    accepted = await docs.client.post(
        url,
        content=f"--b\r\n{disposition}{fits}Content-Type: application/pdf\r\n\r\n{PDF.decode()}"
        "\r\n--b--\r\n".encode(),
        headers={**agent.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert accepted.status_code == 201, accepted.text
    assert len(docs.stored_files()) == 1


@pytest.mark.parametrize(
    ("name", "fallback"),
    [("договор.pdf", "file.pdf"), ("契約 書.pdf", "file.pdf"), ("договор 2.pdf", "2.pdf")],
)
async def test_a_name_in_another_script_falls_back_to_no_hidden_file(
    docs: Docs, name: str, fallback: str
) -> None:
    """A client that reads only ``filename=`` (curl -OJ) saved ``договор.pdf`` as ``.pdf``,
    a hidden file: the ASCII fallback keeps a visible name; ``filename*`` is the real one."""
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF, filename=name)).status_code == 201
    got = await docs.client.get(f"{API}/documents/{document['id']}/download", headers=agent.headers)
    disposition = got.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="{fallback}"; filename*=UTF-8'), (
        disposition
    )


def _private_key_file(folder: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = folder / "jwt.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _asymmetric_auth(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "jwt_algorithm": "ES256",
        "jwt_secret": None,
        "jwt_private_key_file": _private_key_file(folder),
    }


async def test_without_a_key_to_sign_urls_with_start_up_stops_naming_it(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """Auth signing with a private key leaves no JWT secret to derive the URL key from:
    every signed URL was a 403 blaming the client. Start-up now says what to set."""
    with pytest.raises(ConfigurationError) as refused:
        await crm2_app_factory(
            plugins=["documents"],
            plugin_settings={
                "auth": _asymmetric_auth(tmp_path / "keys"),
                "documents": {"local_root": str(tmp_path / "files")},
            },
        )
    assert "CRM2_DOCUMENTS_SIGNING_KEY" in str(refused.value), refused.value


async def signed_url_of(app: Any, root: Path) -> tuple[Docs, User, str, str]:
    """An agent's document with a file in ``app``: the docs, the agent, the URL that asks
    for signed URLs, and one it answered."""
    await seed_default_kinds(app)
    docs = Docs(app, root)
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    url = f"{API}/documents/{document['id']}/signed-url"
    signed = await docs.client.post(url, json={}, headers=agent.headers)
    assert signed.status_code == 200, signed.text
    return docs, agent, url, str(signed.json()["url"])


async def test_a_signing_key_makes_signed_urls_work_with_asymmetric_auth(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    app = await crm2_app_factory(
        plugins=["documents"],
        plugin_settings={
            "auth": _asymmetric_auth(tmp_path / "keys"),
            "documents": {"local_root": str(tmp_path / "files"), "signing_key": "s" * 40},
        },
    )
    docs, _, _, signed = await signed_url_of(app, tmp_path / "files")
    assert (await docs.client.get(signed)).content == PDF


async def test_development_without_any_key_signs_with_a_random_one(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """As auth does there: a random per-process key, so signed URLs work; a key lost at run
    time is a 503 naming the setting, never a 403 that blames the URL."""
    app = await crm2_app_factory(
        env="development",
        plugins=["documents"],
        plugin_settings={
            "auth": {"jwt_secret": None},
            "documents": {"local_root": str(tmp_path / "files")},
        },
    )
    docs, agent, url, signed = await signed_url_of(app, tmp_path / "files")
    assert (await docs.client.get(signed)).content == PDF
    app.context.get(signing.EphemeralSigningKey).key = None
    lost = await docs.client.post(url, json={}, headers=agent.headers)
    assert lost.status_code == 503, lost.text
    assert lost.json()["type"].endswith("documents-signing-key-missing")
    assert "CRM2_DOCUMENTS_SIGNING_KEY" in lost.json()["detail"]


async def test_development_workers_sharing_auths_key_file_open_each_others_urls(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """Two development processes (workers) whose auth signs with the same private key file:
    a URL one signs opens on the other (each drew a random key, and it was a 403); the key
    is derived under a label of its own, never the auth key file's bytes themselves."""
    settings = {
        "auth": _asymmetric_auth(tmp_path / "keys"),
        "documents": {"local_root": str(tmp_path / "files")},
    }
    first, second = [
        await crm2_app_factory(env="development", plugins=["documents"], plugin_settings=settings)
        for _ in range(2)
    ]
    _, _, _, signed = await signed_url_of(first, tmp_path / "files")
    elsewhere = await second.client.get(signed)
    assert elsewhere.status_code == 200, elsewhere.text
    assert elsewhere.content == PDF
    key = first.context.get(signing.EphemeralSigningKey).key
    assert key is not None and len(key) == 32
    assert key not in settings["auth"]["jwt_private_key_file"].read_bytes()
