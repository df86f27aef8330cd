"""The gdrive backend end to end against a fake Google (OAuth 2.0 + Drive v3) on 127.0.0.1.

The production code path: the same settings (base URLs pointed at the fake),
the same HTTP calls. OAuth with PKCE including a refused consent and a revoked
refresh token; the backend contract; the app storing on Drive.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from crm2_documents.config import DocumentsSettings
from crm2_documents.models import Credential
from crm2_documents.storage.gdrive import GDriveBackend
from crm2_documents.storage.registry import storage_of
from crm2_documents.testing import BackendContract
from documents_kit import API, PDF, Docs, make_docs
from fake_google import CLIENT_ID, CLIENT_SECRET, FakeGoogle, fake_google, gdrive_settings

from crm2_core.api import ConfigurationError
from crm2_core.testing.app import TEST_PASSWORD


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    with fake_google() as server:
        yield server


class Grant:
    """A refresh token got straight from the fake (the contract needs no database)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def refresh_token(self) -> str:
        return self.token

    async def revoked(self) -> None:
        return None

    async def status(self) -> dict[str, Any]:
        return {"connected": True}


def direct_grant(google: FakeGoogle) -> Grant:
    settings = DocumentsSettings(_env_file=None, **gdrive_settings(google))  # type: ignore[call-arg]
    import base64
    import hashlib
    from urllib.parse import urlencode

    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = urlencode(
        {
            "client_id": CLIENT_ID,
            "redirect_uri": settings.gdrive_redirect_url,
            "state": "s",
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
    )
    code = google.approve(f"{google.base}/auth?{query}").split("code=")[1]
    answer = httpx.post(
        f"{google.base}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    return Grant(answer.json()["refresh_token"])


class TestGDriveBackend(BackendContract):
    large_size = 4 * 262_144 + 1234  # five resumable chunks
    concurrent_writers = 3

    @pytest.fixture
    async def backend(self, google: FakeGoogle) -> AsyncIterator[GDriveBackend]:
        import uuid

        values = {**gdrive_settings(google), "gdrive_folder": f"contract-{uuid.uuid4().hex[:8]}"}
        settings = SimpleNamespace(**DocumentsSettings(_env_file=None, **values).model_dump())  # type: ignore[call-arg]
        settings.gdrive_client_secret = DocumentsSettings(  # type: ignore[call-arg]
            _env_file=None, **values
        ).gdrive_client_secret
        backend = GDriveBackend(direct_grant(google), settings)
        yield backend
        await backend.aclose()


async def connect(docs: Docs, google: FakeGoogle, admin: Any) -> dict[str, Any]:
    started = await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
    assert started.status_code == 200, started.text
    url = started.json()["url"]
    assert url.startswith(f"{google.base}/auth?") and "code_challenge=" in url
    back = await docs.client.get(google.approve(url))
    assert back.status_code == 200, back.text
    result: dict[str, Any] = back.json()
    return result


async def test_oauth_connect_refuse_replay_and_revoke(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="gdrive", **gdrive_settings(google)
    )
    admin, agent = await docs.user("admin"), await docs.user("agent")
    assert (
        await docs.client.post(f"{API}/oauth/gdrive/start", headers=agent.headers)
    ).status_code == 403
    # refused consent: nothing stored, the state is spent
    started = (await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)).json()
    refused = await docs.client.get(google.refuse(started["url"]))
    assert refused.status_code == 403 and "consent" in refused.json()["type"]
    assert (await docs.client.get(google.approve(started["url"]))).status_code == 400
    forged = await docs.client.get(
        f"{API}/oauth/gdrive/callback", params={"state": "x", "code": "y"}
    )
    assert forged.status_code == 400
    # connected: the refresh token is kept encrypted
    assert (await connect(docs, google, admin))["connected"] is True
    async with docs.app.context.session_factory() as session:
        row = await session.get(Credential, "gdrive")
    assert row is not None and row.refresh_token is not None
    assert not any(token in row.refresh_token for token in google.refresh_tokens)
    # files go to Drive, one folder per document, and come back (ranged too)
    document = await docs.create(agent)
    uploaded = await docs.upload(agent, document["id"], PDF + b"z" * 300_000)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["backend"] == "gdrive" and docs.stored_files() == []
    folder = [f for f in google.files.values() if f.name == document["id"]]
    assert len(folder) == 1
    url = f"{API}/documents/{document['id']}/download"
    got = await docs.client.get(url, headers={**agent.headers, "Range": "bytes=0-4"})
    assert got.status_code == 206 and got.content == b"%PDF-"
    # Google revokes the grant: uploads fail cleanly (503), the backend says so
    google.revoke_all()
    second = await docs.create(agent)
    failed = await docs.upload(agent, second["id"], PDF)
    assert failed.status_code == 503 and "revoked" in failed.json()["type"], failed.text
    status = await docs.client.get(f"{API}/oauth/gdrive", headers=admin.headers)
    assert status.json()["connected"] is False and status.json()["revoked_at"]
    assert (await docs.get(agent, second["id"])).json()["current_version"] == 0
    # connecting again heals it
    assert (await connect(docs, google, admin))["connected"] is True
    assert (await docs.upload(agent, second["id"], PDF)).status_code == 201


async def test_an_admin_api_key_can_connect_drive(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    """The consent is recorded as the user the key acts for: an API key's own id is no
    user, and pending_by / connected_by point at users."""
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="gdrive", **gdrive_settings(google)
    )
    admin = await docs.user("admin")
    made = await docs.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "ops", "role": "admin", "current_password": TEST_PASSWORD},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    key = SimpleNamespace(headers={"Authorization": f"Bearer {made.json()['key']}"})
    assert (await connect(docs, google, key))["connected"] is True
    async with docs.app.context.session_factory() as session:
        row = await session.get(Credential, "gdrive")
    assert row is not None and row.connected_by == admin.id


async def test_an_unreachable_google_is_503_not_500(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="gdrive", **gdrive_settings(google)
    )
    admin, agent = await docs.user("admin"), await docs.user("agent")
    assert (await connect(docs, google, admin))["connected"] is True
    settings = docs.app.context.plugin_settings("documents")
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{spare.getsockname()[1]}"  # nothing listens there
    backend = storage_of(docs.app.context).get("gdrive")
    assert isinstance(backend, GDriveBackend)
    backend.api, backend._token = dead, None
    settings.gdrive_token_url = f"{dead}/token"
    document = await docs.create(agent)
    refused = await docs.upload(agent, document["id"], PDF)
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("documents-storage-unavailable")


async def test_a_token_exchange_google_does_not_answer_is_503(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="gdrive", **gdrive_settings(google)
    )
    admin = await docs.user("admin")
    started = await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{spare.getsockname()[1]}/token"  # nothing listens there
    docs.app.context.plugin_settings("documents").gdrive_token_url = dead
    back = await docs.client.get(google.approve(started.json()["url"]))
    assert back.status_code == 503, back.text
    assert back.json()["type"].endswith("documents-oauth-exchange-failed")
    status = await docs.client.get(f"{API}/oauth/gdrive", headers=admin.headers)
    assert status.json()["connected"] is False


async def test_a_drive_that_answers_something_else_is_503_not_500(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    """A 200 whose body is not Drive's JSON (a proxy's page) is the backend failing."""
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="gdrive", **gdrive_settings(google)
    )
    admin, agent = await docs.user("admin"), await docs.user("agent")
    assert (await connect(docs, google, admin))["connected"] is True
    document = await docs.create(agent)
    google.garbage = True
    try:
        refused = await docs.upload(agent, document["id"], PDF)
    finally:
        google.garbage = False
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("documents-storage-unavailable")


async def test_the_oauth_routes_declare_their_answers(docs: Docs) -> None:
    """Each gdrive route's 200 is a named schema (generated clients get types, not ``any``)."""
    paths = docs.app.app.openapi()["paths"]
    for path, method, fields in (
        ("/oauth/gdrive/start", "post", {"url", "state"}),
        ("/oauth/gdrive/callback", "get", {"connected", "connected_at", "revoked_at"}),
        ("/oauth/gdrive", "get", {"connected", "connected_at", "revoked_at"}),
    ):
        ok = paths[f"{API}{path}"][method]["responses"]["200"]["content"]["application/json"]
        ref = ok["schema"].get("$ref", "")
        assert ref.startswith("#/components/schemas/"), (path, ok)
        schema = docs.app.app.openapi()["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(schema["properties"]) == fields
        assert set(schema["required"]) >= fields & {"url", "state", "connected"}


async def test_the_oauth_routes_declare_the_404_only_where_they_give_it(docs: Docs) -> None:
    """Without a client id, start and callback answer 404 (the backend is as absent as its
    settings) and declare it; start, a POST, may also be 409 (an Idempotency-Key in flight).
    The status read and ``/backends`` name no record and never answer 404: not declared."""
    admin = await docs.user("admin")
    started = await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
    assert started.status_code == 404, started.text
    assert started.json()["type"].endswith("documents-gdrive-not-configured")
    back = await docs.client.get(f"{API}/oauth/gdrive/callback", params={"state": "x"})
    assert back.status_code == 404, back.text
    for path in ("/oauth/gdrive", "/backends"):
        assert (await docs.client.get(f"{API}{path}", headers=admin.headers)).status_code == 200
    paths = docs.app.app.openapi()["paths"]
    assert {"404", "409"} <= set(paths[f"{API}/oauth/gdrive/start"]["post"]["responses"])
    assert "404" in paths[f"{API}/oauth/gdrive/callback"]["get"]["responses"]
    assert "404" not in paths[f"{API}/oauth/gdrive"]["get"]["responses"]
    assert "404" not in paths[f"{API}/backends"]["get"]["responses"]


@pytest.mark.parametrize("token_key", [None, "", "too-short-a-key"])
async def test_a_client_id_without_a_usable_token_key_stops_start_up(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle, token_key: str | None
) -> None:
    """A client id with no token key (or an empty or short one) is refused at start-up in
    one line naming the setting, not found at the first consent as a 500."""
    values = {**gdrive_settings(google), "gdrive_token_key": token_key}
    if token_key is None:
        del values["gdrive_token_key"]
    with pytest.raises(ConfigurationError) as refused:
        await make_docs(crm2_app_factory, tmp_path / "files", **values)
    message = str(refused.value)
    assert "CRM2_DOCUMENTS_GDRIVE_TOKEN_KEY" in message and "\n" not in message, message
    assert "crm2-test" not in message  # a secret is never repeated


async def test_a_token_key_without_a_client_id_is_no_error(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """No client id: no gdrive backend, and a token key set ahead of it is harmless."""
    docs = await make_docs(crm2_app_factory, tmp_path / "files", gdrive_token_key="short")
    assert "gdrive" not in storage_of(docs.app.context).backends


async def test_a_token_key_gone_at_run_time_is_a_503_naming_it(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    """Where start-up cannot know (the settings changed since), the consent answers a 503
    problem that names the setting, never a 500."""
    docs = await make_docs(crm2_app_factory, tmp_path / "files", **gdrive_settings(google))
    admin = await docs.user("admin")
    docs.app.context.plugin_settings("documents").gdrive_token_key = None
    started = await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
    assert started.status_code == 503, started.text
    assert started.headers["content-type"].startswith("application/problem+json")
    assert started.json()["type"].endswith("documents-gdrive-token-key-missing")
    assert "CRM2_DOCUMENTS_GDRIVE_TOKEN_KEY" in started.json()["detail"]
    paths = docs.app.app.openapi()["paths"]
    assert "503" in paths[f"{API}/oauth/gdrive/start"]["post"]["responses"]


async def test_two_first_consents_at_once_are_no_500(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    """Two admins start connecting Drive at the same moment on a deployment that never had
    it: both make the credential row; the later start replaces the earlier (as a new start
    does), never an integrity error as a 500."""
    docs = await make_docs(crm2_app_factory, tmp_path / "files", **gdrive_settings(google))
    first, second = await docs.user("admin"), await docs.user("admin")
    answers = await asyncio.gather(
        *(
            docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
            for admin in (first, second, first, second)
        )
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    urls = [a.json()["url"] for a in answers]
    approved = [(await docs.client.get(google.approve(url))).status_code for url in urls]
    assert approved.count(200) == 1 and approved.count(400) == 3, approved


async def test_two_callbacks_with_one_state_reach_google_once(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    """The state is spent by one conditional UPDATE: of two callbacks with the same state
    at once (a double-clicked redirect, a replay), one exchanges the code and the other is
    a 400 without asking Google; a read then a write let both through."""
    docs = await make_docs(crm2_app_factory, tmp_path / "files", **gdrive_settings(google))
    admin = await docs.user("admin")
    started = await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
    back = google.approve(started.json()["url"])
    before = google.token_requests
    google.token_delay = 0.5  # the first exchange is still running when the others arrive
    try:
        answers = await asyncio.gather(*(docs.client.get(back) for _ in range(3)))
    finally:
        google.token_delay = 0.0
    assert sorted(a.status_code for a in answers) == [200, 400, 400], [a.text for a in answers]
    assert google.token_requests - before == 1
    refused = [a for a in answers if a.status_code == 400]
    assert all(a.json()["type"].endswith("documents-oauth-bad-state") for a in refused)
    status = await docs.client.get(f"{API}/oauth/gdrive", headers=admin.headers)
    assert status.json()["connected"] is True


async def test_a_refused_consent_names_only_a_registered_error_code(
    crm2_app_factory: Any, tmp_path: Path, google: FakeGoogle
) -> None:
    """The callback's ``error`` is whatever the browser's URL says: the 403 repeats none of
    its text, only one of OAuth's registered codes (RFC 6749 §4.1.2.1)."""
    docs = await make_docs(
        crm2_app_factory, tmp_path / "files", backend="gdrive", **gdrive_settings(google)
    )
    admin = await docs.user("admin")
    planted = "Your account is locked: call +1 555 0100 at once"
    details = []
    for error in (planted, "access_denied"):
        started = await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
        state = started.json()["state"]
        back = await docs.client.get(
            f"{API}/oauth/gdrive/callback", params={"state": state, "error": error}
        )
        assert back.status_code == 403, back.text
        details.append(back.json()["detail"])
    assert "555" not in details[0] and "locked" not in details[0], details
    assert "access_denied" in details[1], details
