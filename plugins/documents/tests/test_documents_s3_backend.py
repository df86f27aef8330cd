"""The s3 backend against a real S3-protocol server on 127.0.0.1 (moto's server mode).

The backend contract (multipart upload included: "large" is above the part
size), then the whole app storing on s3 and the transfer queue local → s3.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from crm2_documents.models import Version
from crm2_documents.service.transfers import run_transfers
from crm2_documents.storage.s3 import S3Backend
from crm2_documents.testing import BackendContract
from documents_kit import API, PDF, Docs, make_docs
from s3_server import free_port, make_bucket, s3_server
from sqlalchemy import update

PART = 5 * 1024 * 1024  # S3's smallest multipart part


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


def s3_settings(endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "s3_endpoint_url": endpoint,
        "s3_bucket": bucket,
        "s3_access_key_id": "test",
        "s3_secret_access_key": "test",
        "s3_multipart_threshold": PART,
    }


class TestS3Backend(BackendContract):
    large_size = 2 * PART + 12_345  # three parts: a multipart upload

    @pytest.fixture
    async def backend(self, s3_endpoint: str) -> AsyncIterator[S3Backend]:
        backend = S3Backend(
            endpoint_url=s3_endpoint,
            bucket=make_bucket(s3_endpoint),
            access_key_id="test",
            secret_access_key="test",
            prefix="t/",
            part_size=PART,
        )
        yield backend
        await backend.aclose()


async def test_the_app_stores_on_s3_and_queues_transfers(
    crm2_app_factory: Any, tmp_path: Path, s3_endpoint: str
) -> None:
    bucket = make_bucket(s3_endpoint)
    docs = await make_docs(
        crm2_app_factory,
        tmp_path / "files",
        backend="s3",
        upload_backend="local",
        **s3_settings(s3_endpoint, bucket),
    )
    agent = await docs.user("agent")
    document = await docs.create(agent)
    uploaded = await docs.upload(agent, document["id"], PDF)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["state"] == "transferring" and uploaded.json()["backend"] == "local"
    # readable while it moves, from where it is
    url = f"{API}/documents/{document['id']}/download"
    assert (await docs.client.get(url, headers=agent.headers)).content == PDF
    assert await run_transfers(docs.app.context) == {
        "stored": 1,
        "retry": 0,
        "failed": 0,
        "gone": 0,
    }
    version = (
        await docs.client.get(f"{url.rsplit('/', 1)[0]}/versions/1", headers=agent.headers)
    ).json()
    assert version["state"] == "stored" and version["backend"] == "s3"
    assert docs.stored_files() == []  # the local copy is gone
    assert (await docs.client.get(url, headers=agent.headers)).content == PDF
    assert [e.type for e in await docs.events("documents.document.transfer_done")]


async def test_a_transfer_that_keeps_failing_is_marked_failed(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    docs = await make_docs(
        crm2_app_factory,
        tmp_path / "files",
        backend="s3",
        upload_backend="local",
        transfer_max_attempts=2,
        **s3_settings(dead, "nowhere"),
    )
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    from datetime import timedelta

    from crm2_core.api import utcnow

    first = await run_transfers(docs.app.context)
    assert first["retry"] == 1
    second = await run_transfers(docs.app.context, now=utcnow() + timedelta(hours=1))
    assert second["failed"] == 1
    [failed] = await docs.events("documents.document.transfer_failed")
    assert failed.data["target_backend"] == "s3" and failed.data["error"]
    got = await docs.client.get(f"{API}/documents/{document['id']}/download", headers=agent.headers)
    assert got.content == PDF  # still served from where it was
    # asked onto the backend it is still on: a 409 naming the state, not a 200 that keeps it
    admin = await docs.user("admin")
    url = f"{API}/documents/{document['id']}/versions/1"
    here = await docs.client.post(
        f"{url}/transfer", json={"backend": "local"}, headers=admin.headers
    )
    assert here.status_code == 409, here.text
    assert here.headers["content-type"].startswith("application/problem+json")
    assert here.json()["type"].endswith("documents-transfer-failed")
    assert "failed" in here.json()["detail"] and "'s3'" in here.json()["detail"]
    assert (await docs.client.get(url, headers=admin.headers)).json()["state"] == "failed"
    # asked onto its target again: the move is retried
    again = await docs.client.post(f"{url}/transfer", json={"backend": "s3"}, headers=admin.headers)
    assert again.status_code == 202, again.text
    assert (again.json()["state"], again.json()["target_backend"]) == ("transferring", "s3")


async def test_an_unreachable_s3_is_503_not_500(crm2_app_factory: Any, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="s3", **s3_settings(dead, "nowhere")
    )
    agent = await docs.user("agent")
    document = await docs.create(agent)
    refused = await docs.upload(agent, document["id"], PDF)
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("documents-storage-unavailable")
    assert (await docs.get(agent, document["id"])).json()["current_version"] == 0


@contextmanager
def cut_short_s3() -> Iterator[str]:
    """An 'S3' whose every answer is a 200 that promises 100,000 bytes and hangs up before
    the first (a connection reset at the start of the body)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65_536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n"
                    b'Content-Length: 100000\r\nETag: "x"\r\n\r\n'
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


async def test_an_s3_body_cut_before_its_first_bytes_is_503_not_500(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """The object's body breaks off before the download's headers are sent: a 503 problem,
    as for an S3 that does not answer, not a 500."""
    with cut_short_s3() as endpoint:
        docs = await make_docs(
            crm2_app_factory, tmp_path / "files", **s3_settings(endpoint, "cut-short")
        )
        agent = await docs.user("agent")
        document = await docs.create(agent)
        assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
        async with docs.app.context.session_factory() as session:
            await session.execute(update(Version).values(backend="s3"))
            await session.commit()
        url = f"{API}/documents/{document['id']}/download"
        got = await docs.client.get(url, headers=agent.headers)
    assert got.status_code == 503, got.text
    assert got.json()["type"].endswith("documents-storage-unavailable")


async def test_a_transfer_answers_where_to_follow_it(crm2_app_factory: Any, tmp_path: Path) -> None:
    """202 is no answer on its own: ``Location`` names the version, whose ``state`` says
    transferring until the move is done (stored) or given up (failed); declared too."""
    dead = f"http://127.0.0.1:{free_port()}"  # the move itself is not run here
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="local", **s3_settings(dead, "nowhere")
    )
    admin = await docs.user("admin")
    document = await docs.create(admin)
    assert (await docs.upload(admin, document["id"], PDF)).status_code == 201
    url = f"{API}/documents/{document['id']}/versions/1"
    moved = await docs.client.post(f"{url}/transfer", json={"backend": "s3"}, headers=admin.headers)
    assert moved.status_code == 202, moved.text
    assert moved.headers["location"] == url
    followed = await docs.client.get(moved.headers["location"], headers=admin.headers)
    assert followed.status_code == 200, followed.text
    assert (followed.json()["state"], followed.json()["target_backend"]) == ("transferring", "s3")
    paths = docs.app.app.openapi()["paths"]
    template = "/api/v1/documents/documents/{document_id}/versions/{number}"
    accepted = paths[f"{template}/transfer"]["post"]["responses"]["202"]
    assert "Location" in accepted["headers"], accepted


async def test_a_transfer_to_where_the_file_is_is_200_and_queues_nothing(docs: Docs) -> None:
    """Asking to move a version to the backend it is on is no 202 that does nothing: 200,
    the version as it is (stored, no target), nothing queued; declared too."""
    admin = await docs.user("admin")
    document = await docs.create(admin)
    assert (await docs.upload(admin, document["id"], PDF)).status_code == 201
    url = f"{API}/documents/{document['id']}/versions/1"
    before = (await docs.client.get(url, headers=admin.headers)).json()
    same = await docs.client.post(
        f"{url}/transfer", json={"backend": "local"}, headers=admin.headers
    )
    assert same.status_code == 200, same.text
    assert same.headers["location"] == url
    assert same.json() == before
    assert (same.json()["state"], same.json()["target_backend"]) == ("stored", None)
    assert await docs.events("documents.document.transfer_done") == []
    paths = docs.app.app.openapi()["paths"]
    template = "/api/v1/documents/documents/{document_id}/versions/{number}"
    answers = paths[f"{template}/transfer"]["post"]["responses"]
    assert {"200", "202"} <= set(answers), answers
