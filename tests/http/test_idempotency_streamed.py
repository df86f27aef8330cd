"""``Idempotency-Key`` on a route that streams its body: the bytes decide, not their length."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from fastapi import APIRouter, Request, status
from sqlalchemy import func, select

from crm2_core.auth.models import User
from crm2_core.auth.schemas import UserCreate
from crm2_core.errors import Conflict
from crm2_core.http.deps import ContextDep, SessionDep
from crm2_core.http.idempotency_body import StreamedBody
from crm2_core.http.middleware import Message
from crm2_core.http.streamed import STREAMED_BODY
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import PluginManifest, hookimpl

UPLOADS = "/api/v1/uploads"


class Uploads:
    """Streamed routes that create a user per call and answer the SHA-256 of the body:
    ``/read`` reads the body first, ``/write-first`` writes before reading it, and
    ``/unread`` never reads it."""

    manifest = PluginManifest(name="uploads", title="Uploads")

    def __init__(self) -> None:
        # ``/slow`` waits for ``release`` after writing (and sets ``entered``)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix=UPLOADS)

        async def create_user(context: ContextDep, session: SessionDep) -> None:
            email = f"up-{uuid.uuid4().hex[:10]}@example.com"
            body = UserCreate(email=email, password=TEST_PASSWORD, roles=["agent"])
            await context.auth.create_user(session, body)
            await session.flush()

        async def digest(request: Request) -> str:
            hashed = hashlib.sha256()
            async for chunk in request.stream():
                hashed.update(chunk)
            return hashed.hexdigest()

        @router.post("/read", status_code=status.HTTP_201_CREATED, openapi_extra=STREAMED_BODY)
        async def read(request: Request, context: ContextDep, session: SessionDep) -> str:
            answer = await digest(request)
            await create_user(context, session)
            return answer

        @router.post(
            "/write-first", status_code=status.HTTP_201_CREATED, openapi_extra=STREAMED_BODY
        )
        async def write_first(request: Request, context: ContextDep, session: SessionDep) -> str:
            await create_user(context, session)
            return await digest(request)

        @router.post("/unread", status_code=status.HTTP_201_CREATED, openapi_extra=STREAMED_BODY)
        async def unread(context: ContextDep, session: SessionDep) -> str:
            await create_user(context, session)
            return "unread"

        @router.post("/once", status_code=status.HTTP_201_CREATED, openapi_extra=STREAMED_BODY)
        async def once(request: Request, context: ContextDep, session: SessionDep) -> str:
            """Reads the first chunk only, and refuses to make its user twice (409)."""
            name = (await anext(request.stream()))[:10].decode()
            email = f"up-{name}@example.com"
            if await session.scalar(select(User.id).where(User.email == email)) is not None:
                raise Conflict(f"{email} exists")
            body = UserCreate(email=email, password=TEST_PASSWORD, roles=["agent"])
            await context.auth.create_user(session, body)
            return name

        @router.post("/slow", status_code=status.HTTP_201_CREATED, openapi_extra=STREAMED_BODY)
        async def slow(request: Request, context: ContextDep, session: SessionDep) -> str:
            answer = await digest(request)
            await create_user(context, session)
            self.entered.set()
            await self.release.wait()
            return answer

        return [router]


async def users_made(app: Crm2TestApp) -> int:
    async with app.context.session_factory() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email.startswith("up-"))  # type: ignore[attr-defined]
        )
    return int(count or 0)


async def test_same_length_other_bytes_is_422_not_a_replay(crm2_app_factory: AppFactory) -> None:
    app = await crm2_app_factory(extra_plugins=(Uploads(),))
    headers = {**await app.login("admin"), "Idempotency-Key": "file-1"}

    first = await app.client.post(
        f"{UPLOADS}/read", files={"file": ("a.txt", b"A" * 5000)}, headers=headers
    )
    other = await app.client.post(
        f"{UPLOADS}/read", files={"file": ("a.txt", b"B" * 5000)}, headers=headers
    )

    assert first.status_code == 201, first.text
    assert other.status_code == 422, other.text
    assert other.json()["type"] == "urn:crm2:problem:idempotency-key-reused"
    assert await users_made(app) == 1


async def test_the_same_file_under_a_new_boundary_is_replayed(
    crm2_app_factory: AppFactory,
) -> None:
    app = await crm2_app_factory(extra_plugins=(Uploads(),))
    headers = {**await app.login("admin"), "Idempotency-Key": "file-2"}
    content = bytes(range(256)) * 40

    first = await app.client.post(
        f"{UPLOADS}/read", files={"file": ("f.bin", content)}, headers=headers
    )
    # httpx draws a new boundary per request, and one of another length: the
    # Content-Length differs too, as it does between a browser's retries.
    again = await app.client.post(
        f"{UPLOADS}/read",
        files={"file": ("f.bin", content)},
        headers={**headers, "Content-Type": "multipart/form-data; boundary=retry-boundary-7"},
    )

    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await users_made(app) == 1


@pytest.mark.parametrize(
    "route",
    [
        "write-first",  # the claim runs once the body is read, in the transaction it began
        "unread",  # what the route left unread is read after it returns, and decides
    ],
)
async def test_the_whole_body_decides_however_the_route_reads_it(
    crm2_app_factory: AppFactory, route: str
) -> None:
    app = await crm2_app_factory(extra_plugins=(Uploads(),))
    headers = {**await app.login("admin"), "Idempotency-Key": f"file-{route}"}
    url = f"{UPLOADS}/{route}"

    first = await app.client.post(url, content=b"x" * 3000, headers=headers)
    again = await app.client.post(url, content=b"x" * 3000, headers=headers)
    other = await app.client.post(url, content=b"y" * 3000, headers=headers)

    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422, other.text
    assert await users_made(app) == 1


async def test_an_error_from_the_first_requests_own_effect_gives_way_to_its_replay(
    crm2_app_factory: AppFactory,
) -> None:
    """The route answered 409 (its user exists: the first request made it) before it read
    its body to the end, so before the key was claimed: the retry gets the stored 201."""
    app = await crm2_app_factory(extra_plugins=(Uploads(),))
    headers = {**await app.login("admin"), "Idempotency-Key": "file-6"}

    async def body(tail: bytes) -> AsyncIterator[bytes]:
        yield b"ada-lovela"
        yield tail

    first = await app.client.post(f"{UPLOADS}/once", content=body(b"1" * 500), headers=headers)
    again = await app.client.post(f"{UPLOADS}/once", content=body(b"1" * 500), headers=headers)
    other = await app.client.post(f"{UPLOADS}/once", content=body(b"2" * 500), headers=headers)
    unkeyed = await app.client.post(
        f"{UPLOADS}/once",
        content=body(b"1" * 500),
        headers={"Authorization": headers["Authorization"]},
    )

    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422, other.text
    assert unkeyed.status_code == 409, unkeyed.text
    assert await users_made(app) == 1


async def test_a_duplicate_upload_while_the_first_runs_waits_and_replays(
    crm2_app_factory: AppFactory,
) -> None:
    uploads = Uploads()
    app = await crm2_app_factory(extra_plugins=(uploads,))
    headers = {**await app.login("admin"), "Idempotency-Key": "file-5"}
    url = f"{UPLOADS}/slow"

    first = asyncio.create_task(app.client.post(url, content=b"z" * 2000, headers=headers))
    await asyncio.wait_for(uploads.entered.wait(), 10)
    second = asyncio.create_task(app.client.post(url, content=b"z" * 2000, headers=headers))
    await asyncio.sleep(0.3)  # the duplicate has read its body and waits on the key
    assert not second.done()
    uploads.release.set()
    answers = await asyncio.wait_for(asyncio.gather(first, second), 15)

    assert [a.status_code for a in answers] == [201, 201], answers[1].text
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert answers[1].json() == answers[0].json()
    assert await users_made(app) == 1


async def _digest_of(chunks: list[bytes], boundary: bytes | None) -> str:
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    feed = iter(messages)
    found: list[str] = []

    async def receive() -> Message:
        return next(feed)

    async def complete(fingerprint: str) -> None:
        found.append(fingerprint)

    body = StreamedBody(receive, hashlib.sha256(), boundary, complete)
    for _ in messages:
        await body.receive()
    assert body.complete
    return found[0]


async def test_the_boundary_is_replaced_wherever_the_chunks_split() -> None:
    boundary = b"b0und"
    body = b"--b0und\r\nhead\r\n\r\n--b0un--b0und--b0und--\r\n-b0und"
    whole = await _digest_of([body], boundary)
    for cut_a, cut_b in itertools.combinations(range(1, len(body)), 2):
        chunks = [body[:cut_a], body[cut_a:cut_b], body[cut_b:]]
        assert await _digest_of(chunks, boundary) == whole, (cut_a, cut_b)
    expected = hashlib.sha256(body.replace(b"--" + boundary, b"--\0")).hexdigest()
    assert whole == expected
    other_boundary = body.replace(b"--b0und", b"--zz-987654")
    assert await _digest_of([other_boundary], b"zz-987654") == whole
