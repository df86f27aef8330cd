"""A file missing from its backend, or a backend that fails: a problem+json answer, never a 500
or a download cut off after its headers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crm2_documents.models import Document, Version
from crm2_documents.service.retention import purge_deleted
from crm2_documents.service.transfers import run_transfers
from crm2_documents.storage.base import StorageBackend, StorageError
from crm2_documents.storage.local import LocalBackend
from crm2_documents.storage.registry import storage_of
from documents_kit import API, PDF, Docs, User, make_docs
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from crm2_core.api import JobRunner, utcnow
from crm2_hookspecs import PluginManifest, hookimpl


def problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(slug), response.text


async def test_a_file_missing_from_its_backend_is_a_problem_not_a_500(docs: Docs) -> None:
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    signed = await docs.client.post(
        f"{API}/documents/{document['id']}/signed-url", json={}, headers=agent.headers
    )
    [stored] = docs.stored_files()
    stored.unlink()  # the storage lost it (restored without its files, a disk replaced…)
    url = f"{API}/documents/{document['id']}/download"
    problem(await docs.client.get(url, headers=agent.headers), 404, "documents-file-missing")
    ranged = await docs.client.get(url, headers={**agent.headers, "Range": "bytes=2-5"})
    problem(ranged, 404, "documents-file-missing")
    problem(await docs.client.get(signed.json()["url"]), 404, "documents-file-missing")


class Broken(StorageBackend):
    """A backend whose store is down: every call fails as a backend says so."""

    name = "broken"

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        async for _ in chunks:
            break
        raise StorageError("the store refused the write")

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        raise StorageError("the store is unreachable")
        yield b""  # pragma: no cover - an async generator

    async def delete(self, key: str) -> bool:
        raise StorageError("the store is unreachable")

    async def exists(self, key: str) -> bool:
        raise StorageError("the store is unreachable")


class ExtraBackend:
    """A plugin adding one storage backend, the test's own."""

    manifest = PluginManifest(name="extra_store", title="Extra store", depends=("documents",))

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    @hookimpl
    def crm2_documents_storage_backends(self, context: Any) -> Sequence[StorageBackend]:
        return [self.backend]


MakeDocs = Callable[..., Awaitable[Docs]]


@pytest.fixture
def docs_with(crm2_app_factory: Any, tmp_path: Path) -> MakeDocs:
    """``await docs_with(store, **settings)``: an app with documents (files under a temporary
    root, ``settings`` its own) and, when given, ``store`` as one more storage backend."""

    async def make(store: StorageBackend | None = None, **settings: Any) -> Docs:
        plugins = ["documents", "extra_store"] if store is not None else ["documents"]
        extra = (ExtraBackend(store),) if store is not None else ()
        return await make_docs(
            crm2_app_factory, tmp_path / "files", plugins, extra_plugins=extra, **settings
        )

    return make


async def test_a_failing_backend_is_503_and_keeps_nothing(docs_with: MakeDocs) -> None:
    docs = await docs_with(Broken())
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    # the version's backend fails on reading
    async with docs.app.context.session_factory() as session:
        await session.execute(update(Version).values(backend="broken"))
        await session.commit()
    url = f"{API}/documents/{document['id']}/download"
    failed = await docs.client.get(url, headers=agent.headers)
    problem(failed, 503, "documents-storage-unavailable")
    assert "unreachable" not in failed.text  # the backend's own words stay in the log
    # uploads land on a backend that refuses the write
    storage_of(docs.app.context).upload = "broken"
    refused = await docs.upload(agent, document["id"], PDF + b"2")
    problem(refused, 503, "documents-storage-unavailable")
    assert (await docs.get(agent, document["id"])).json()["current_version"] == 1


class CutShort(LocalBackend):
    """A backend whose reads can end early without saying so (a connection cut mid-body)."""

    cut = False

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in super().open(key, start, end):
            yield chunk
            if self.cut:
                return


async def test_a_transfer_that_reads_a_cut_short_file_moves_nothing(
    docs_with: MakeDocs, tmp_path: Path
) -> None:
    """The copy is checked against the version's size and SHA-256 before the version moves
    and the original goes: a short read stores nothing on the target and keeps the file."""
    source = CutShort(tmp_path / "source", name="cut_short")
    docs = await docs_with(source, upload_backend="cut_short", backend="local")
    agent = await docs.user("agent")
    document = await docs.create(agent)
    data = PDF + b"x" * 200_000  # several chunks
    uploaded = await docs.upload(agent, document["id"], data)
    assert uploaded.json()["state"] == "transferring", uploaded.text
    source.cut = True
    counts = await run_transfers(docs.app.context)
    assert counts["retry"] == 1 and counts["stored"] == 0, counts
    assert docs.stored_files() == []  # nothing on the target
    version = (await docs.get(agent, document["id"])).json()["current"]
    assert version["backend"] == "cut_short" and version["state"] == "transferring"
    source.cut = False
    got = await docs.client.get(f"{API}/documents/{document['id']}/download", headers=agent.headers)
    assert got.content == data  # the original is still there, whole
    later = await run_transfers(docs.app.context, now=utcnow() + timedelta(hours=1))
    assert later["stored"] == 1
    [moved] = docs.stored_files()
    assert moved.read_bytes() == data


class Gated(LocalBackend):
    """A backend whose first read waits at a gate: a copy as slow as the test wants."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened = 0
        self.reading, self.gate = asyncio.Event(), asyncio.Event()

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        self.opened += 1
        if self.opened == 1:
            self.reading.set()
            await self.gate.wait()
        async for chunk in super().open(key, start, end):
            yield chunk


async def test_a_slow_transfer_is_not_claimed_again_while_it_copies(
    docs_with: MakeDocs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that takes longer than the first backoff keeps its claim: its lease is pushed
    on while it runs, so another run (another process) does not copy the file a second
    time; the claim used to be the backoff alone, 5 s, and a whole batch's at once."""
    from crm2_documents.service import transfers

    monkeypatch.setattr(transfers, "BACKOFF_SECONDS", (0.2, 0.2, 0.2, 0.2, 0.2))
    monkeypatch.setattr(transfers, "LEASE_SECONDS", 0.6, raising=False)
    source = Gated(tmp_path / "source", name="cut_short")
    docs = await docs_with(source, upload_backend="cut_short", backend="local")
    agent = await docs.user("agent")
    document = await docs.create(agent)
    data = PDF + b"x" * 100_000
    assert (await docs.upload(agent, document["id"], data)).json()["state"] == "transferring"
    first = asyncio.create_task(run_transfers(docs.app.context))
    try:
        await asyncio.wait_for(source.reading.wait(), 10)
        await asyncio.sleep(1.5)  # past the backoff and the lease, were it not renewed
        second = await asyncio.wait_for(run_transfers(docs.app.context), 10)
        assert second == {"stored": 0, "retry": 0, "failed": 0, "gone": 0}, second
        assert source.opened == 1
    finally:
        source.gate.set()
    assert (await asyncio.wait_for(first, 10))["stored"] == 1
    version = (await docs.get(agent, document["id"])).json()["current"]
    assert version["backend"] == "local" and version["state"] == "stored"
    [moved] = docs.stored_files()
    assert moved.read_bytes() == data
    assert len(await docs.events("documents.document.transfer_done")) == 1


class RestoresFirst(LocalBackend):
    """A backend that lets a request in just before it deletes: a restore racing the purge."""

    before_delete: Any = None

    async def delete(self, key: str) -> bool:
        if self.before_delete is not None:
            await self.before_delete()
        return await super().delete(key)


async def deleted_days_ago(docs: Docs, days: int) -> None:
    """Date every document's deletion ``days`` back (the tests delete theirs first)."""
    async with docs.app.context.session_factory() as session:
        await session.execute(update(Document).values(deleted_at=utcnow() - timedelta(days=days)))
        await session.commit()


async def deleted_with_a_file(docs: Docs, days_ago: int = 2) -> tuple[User, str]:
    """A manager's document with a file, deleted ``days_ago`` (two: past a day's
    retention): the manager and the document's URL."""
    manager = await docs.user("manager")
    document = await docs.create(manager)
    assert (await docs.upload(manager, document["id"], PDF)).status_code == 201
    url = f"{API}/documents/{document['id']}"
    assert (await docs.client.delete(url, headers=manager.headers)).status_code == 204
    await deleted_days_ago(docs, days_ago)
    return manager, url


async def test_a_document_past_retention_cannot_be_restored_while_it_is_purged(
    docs_with: MakeDocs, tmp_path: Path
) -> None:
    """The purge removes the files, then the row: a restore in between kept the row and lost
    the files. Past its purge_after a document is no longer restorable."""
    backend = RestoresFirst(tmp_path / "racing", name="racing")
    docs = await docs_with(backend, backend="racing", retention_days=1)
    manager, url = await deleted_with_a_file(docs)
    restores: list[int] = []

    async def restore() -> None:
        answer = await docs.client.post(f"{url}/restore", headers=manager.headers)
        restores.append(answer.status_code)

    backend.before_delete = restore
    purged = await purge_deleted(docs.app.context)
    assert restores == [409]  # past purge_after: refused, not restored without its files
    assert purged == 1
    assert (await docs.client.get(url, headers=manager.headers)).status_code == 404


class PurgedWhileRead(LocalBackend):
    """A source whose file is purged while a transfer is reading it."""

    while_read: Any = None

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in super().open(key, start, end):
            if self.while_read is not None:
                hook, self.while_read = self.while_read, None
                await hook()
            yield chunk


async def test_a_copy_that_lands_after_the_purge_is_removed(
    docs_with: MakeDocs, tmp_path: Path
) -> None:
    """A transfer that finishes its copy after the purge removed the version leaves no file
    of the purged document on the target."""
    source = PurgedWhileRead(tmp_path / "source", name="cut_short")
    docs = await docs_with(source, upload_backend="cut_short", backend="local", retention_days=1)
    await deleted_with_a_file(docs, days_ago=0)

    async def purge() -> None:  # retention passes while the copy runs
        await deleted_days_ago(docs, 2)
        assert await purge_deleted(docs.app.context) == 1

    source.while_read = purge
    assert (await run_transfers(docs.app.context))["gone"] == 1
    assert docs.stored_files() == []  # no copy of the purged file on the target


async def test_a_transfer_that_fails_past_retention_is_settled_not_left_transferring(
    docs_with: MakeDocs, tmp_path: Path
) -> None:
    """Retention passes while a copy runs and the copy fails: the version was answered
    ``gone`` and left ``transferring`` (due again the moment the document was no longer
    past retention, never ``failed``). It is settled: failed, due never."""
    source = PurgedWhileRead(tmp_path / "source", name="cut_short")
    docs = await docs_with(source, upload_backend="cut_short", backend="local", retention_days=1)
    await deleted_with_a_file(docs, days_ago=0)

    async def retention_passes_and_the_read_fails() -> None:
        await deleted_days_ago(docs, 2)
        raise OSError("the source went away")

    source.while_read = retention_passes_and_the_read_fails
    assert (await run_transfers(docs.app.context))["gone"] == 1
    async with docs.app.context.session_factory() as session:
        [version] = (await session.execute(select(Version))).scalars()
    assert (version.state, version.next_attempt_at) == ("failed", None), version
    assert version.last_error and "retention" in version.last_error
    assert docs.stored_files() == []  # nothing landed on the target


class PausedAfterItsFirstDelete(LocalBackend):
    """A target whose first delete once ``armed`` (the purge's) waits, once done, until the
    test lets it go on: the purge has removed the target's key and not yet the rows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.armed = False
        self.deleted, self.release = asyncio.Event(), asyncio.Event()

    async def delete(self, key: str) -> bool:
        removed = await super().delete(key)
        if self.armed and not self.deleted.is_set():
            self.deleted.set()
            await asyncio.wait_for(self.release.wait(), 10)
        return removed


async def test_a_copy_that_lands_while_the_purge_removes_the_files_is_removed(
    docs_with: MakeDocs, tmp_path: Path
) -> None:
    """The purge removes a document's files from every backend, then its rows: a transfer
    that landed its copy on the target in between found the version still there and
    recorded it, and the purged document's file lived on, on the target. A document past
    retention is the purge's: its copy is removed, never recorded."""
    source = PurgedWhileRead(tmp_path / "source", name="cut_short")
    target = PausedAfterItsFirstDelete(tmp_path / "target", name="racing")
    docs = await docs_with(source, upload_backend="cut_short", backend="local", retention_days=1)
    storage_of(docs.app.context).backends["racing"] = target
    await deleted_with_a_file(docs)
    async with docs.app.context.session_factory() as session:
        await session.execute(update(Version).values(target_backend="racing"))
        await session.commit()
    idle = {"stored": 0, "retry": 0, "failed": 0, "gone": 0}
    # past retention: not copied at all
    assert await asyncio.wait_for(run_transfers(docs.app.context), 10) == idle
    target.armed = True
    await deleted_days_ago(docs, 0)  # within retention when the copy starts
    purging: list[asyncio.Task[int]] = []

    async def purge_until_the_rows() -> None:  # the copy is open: it reads on
        await deleted_days_ago(docs, 2)
        purging.append(asyncio.create_task(purge_deleted(docs.app.context)))
        await asyncio.wait_for(target.deleted.wait(), 10)

    source.while_read = purge_until_the_rows
    try:
        moved = await asyncio.wait_for(run_transfers(docs.app.context), 10)
    finally:
        target.release.set()
    assert await asyncio.wait_for(purging[0], 10) == 1
    assert [p for p in (tmp_path / "target").rglob("*") if p.is_file()] == []
    assert moved == {**idle, "gone": 1}, moved


class KeepsEverything(LocalBackend):
    """A backend whose deletes fail (the store refuses them for a while)."""

    async def delete(self, key: str) -> bool:
        raise StorageError("deletes are refused")


async def test_a_refused_upload_stays_its_own_error_when_the_cleanup_fails(
    docs_with: MakeDocs, tmp_path: Path
) -> None:
    """The duplicate is 409 even when removing its stored copy fails (that is logged)."""
    backend = KeepsEverything(tmp_path / "keeps", name="keeps")
    docs = await docs_with(backend, backend="keeps")
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    problem(await docs.upload(agent, document["id"], PDF), 409, "documents-duplicate-content")


_REFUSE_AT_COMMIT = (
    "CREATE FUNCTION documents_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$",
    "CREATE CONSTRAINT TRIGGER documents_test_refuse AFTER INSERT ON documents_version "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
    "WHEN (NEW.filename = 'refused-at-commit.pdf') EXECUTE FUNCTION documents_test_refuse()",
)


@pytest.mark.parametrize("idempotent", [False, True])
async def test_an_upload_whose_commit_fails_leaves_no_file(docs: Docs, idempotent: bool) -> None:
    """The version is recorded by the request's commit, after the file is stored: when that
    commit fails (here a deferred constraint PostgreSQL checks only at COMMIT), the stored
    file goes too, whether the route or the Idempotency-Key middleware commits."""
    if docs.app.context.settings.is_sqlite:
        pytest.skip("SQLite checks nothing at COMMIT that the upload's writes could break")
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    kept = docs.stored_files()
    async with docs.app.context.engine.begin() as connection:
        for statement in _REFUSE_AT_COMMIT:
            await connection.execute(text(statement))
    try:
        headers = {"Idempotency-Key": "commit-fails"} if idempotent else {}
        try:
            failed = await docs.upload(
                agent, document["id"], PDF + b"%2\n", "refused-at-commit.pdf", headers=headers
            )
            assert failed.status_code >= 500, failed.text
        except DBAPIError:  # the test client re-raises what the app did not answer
            pass
    finally:
        async with docs.app.context.engine.begin() as connection:
            await connection.execute(
                text("DROP TRIGGER documents_test_refuse ON documents_version")
            )
            await connection.execute(text("DROP FUNCTION documents_test_refuse()"))
    async with asyncio.timeout(10):
        await JobRunner.of(docs.app.context).wait_idle()
    assert (await docs.get(agent, document["id"])).json()["current_version"] == 1
    assert docs.stored_files() == kept


async def test_a_purge_blocked_by_a_removed_backend_is_reported_and_holds_up_nothing(
    docs_with: MakeDocs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A deleted document whose file is on a backend no longer configured cannot be purged
    (its file cannot be removed): it is reported, and the other documents past retention
    are purged all the same, run after run; configured again, it is purged."""
    docs = await docs_with(None, retention_days=1, purge_batch=1)
    manager = await docs.user("manager")
    blocked, free = await docs.create(manager), await docs.create(manager)
    for document in (blocked, free):
        uploaded = await docs.upload(manager, document["id"], PDF + document["id"].encode())
        assert uploaded.status_code == 201, uploaded.text
    async with docs.app.context.session_factory() as session:
        await session.execute(
            update(Version)
            .where(Version.document_id == uuid.UUID(blocked["id"]))
            .values(backend="retired")
        )
        await session.commit()
    for document in (blocked, free):  # the blocked one first: it is the oldest deletion
        url = f"{API}/documents/{document['id']}"
        assert (await docs.client.delete(url, headers=manager.headers)).status_code == 204
    await deleted_days_ago(docs, 2)
    async with docs.app.context.session_factory() as session:
        await session.execute(
            update(Document)
            .where(Document.id == uuid.UUID(blocked["id"]))
            .values(deleted_at=utcnow() - timedelta(days=3))
        )
        await session.commit()
    with caplog.at_level("WARNING", logger="crm2_documents"):
        assert await purge_deleted(docs.app.context) == 1
        assert await purge_deleted(docs.app.context) == 0  # nothing left that can go
    assert any("retired" in r.getMessage() and "not configured" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]  # fmt: skip
    async with docs.app.context.session_factory() as session:
        left = {d.id for d in (await session.execute(select(Document))).scalars()}
    assert left == {uuid.UUID(blocked["id"])}
    # the backend is configured again (by its name): the purge takes the document
    storage = storage_of(docs.app.context)
    storage.backends["retired"] = LocalBackend(tmp_path / "retired", name="retired")
    try:
        assert await purge_deleted(docs.app.context) == 1
    finally:
        del storage.backends["retired"]


async def test_a_purge_blocked_by_a_removed_backend_shows_in_the_backends_status(
    docs_with: MakeDocs,
) -> None:
    """An operator sees, in ``GET /backends``, how many deleted documents wait on each backend
    that is no longer configured (not only in the purge's log); a document still within its
    retention, or with a file on a configured backend, is not counted."""
    docs = await docs_with(None, retention_days=1)
    admin = await docs.user("admin")
    waiting = [await docs.create(admin) for _ in range(3)]
    recent = await docs.create(admin)
    for document in [*waiting, recent]:
        uploaded = await docs.upload(admin, document["id"], PDF + document["id"].encode())
        assert uploaded.status_code == 201, uploaded.text
        url = f"{API}/documents/{document['id']}"
        assert (await docs.client.delete(url, headers=admin.headers)).status_code == 204
    moves = {
        waiting[0]["id"]: {"backend": "retired"},
        waiting[1]["id"]: {"backend": "retired", "target_backend": "gone"},
        waiting[2]["id"]: {"target_backend": "gone"},
        recent["id"]: {"backend": "retired"},
    }
    async with docs.app.context.session_factory() as session:
        for document_id, values in moves.items():
            await session.execute(
                update(Version).where(Version.document_id == uuid.UUID(document_id)).values(values)
            )
        await session.execute(
            update(Document)
            .where(Document.id.in_([uuid.UUID(d["id"]) for d in waiting]))  # type: ignore[attr-defined]
            .values(deleted_at=utcnow() - timedelta(days=2))
        )
        await session.commit()
    status = await docs.client.get(f"{API}/backends", headers=admin.headers)
    assert status.status_code == 200, status.text
    assert status.json()["purge_blocked"] == [
        {"backend": "gone", "documents": 2},
        {"backend": "retired", "documents": 2},
    ]
    assert [b["name"] for b in status.json()["backends"]] == ["local"]
    schema = docs.app.app.openapi()["paths"]["/api/v1/documents/backends"]["get"]
    assert "StorageStatus" in str(schema["responses"]["200"])


async def test_files_stored_by_server_code_join_the_transfer_queue_as_uploads_do(
    docs_with: MakeDocs, tmp_path: Path
) -> None:
    """Demo documents (``store_bytes``) land on the upload backend like an upload: when the
    files belong elsewhere they are queued (``transferring``) and moved, not left behind
    as ``stored`` where they landed."""
    target = CutShort(tmp_path / "target", name="cut_short")
    docs = await docs_with(target, upload_backend="local", backend="cut_short")
    admin = await docs.user("admin")
    for _plugin, result in docs.app.context.plugins.call(
        "crm2_seed", name="demo", context=docs.app.context
    ):
        if asyncio.iscoroutine(result):
            await result
    listed = (await docs.client.get(f"{API}/documents", headers=admin.headers)).json()["items"]
    assert len(listed) == 2
    for document in listed:
        current = document["current"]
        assert (current["backend"], current["state"]) == ("local", "transferring"), current
        assert current["target_backend"] == "cut_short"
    assert (await run_transfers(docs.app.context))["stored"] == 2
    assert docs.stored_files() == []


async def test_a_file_on_a_backend_no_longer_configured_downloads_as_503_not_422(
    docs: Docs,
) -> None:
    """A version whose backend was taken out of the configuration is this deployment's
    problem, not the client's: 503 storage-unavailable (declared), not the 422
    unknown-backend a client gets for naming a backend that does not exist."""
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    async with docs.app.context.session_factory() as session:
        await session.execute(update(Version).values(backend="retired"))
        await session.commit()
    url = f"{API}/documents/{document['id']}"
    got = await docs.client.get(f"{url}/download", headers=agent.headers)
    assert got.status_code == 503, got.text
    assert got.json()["type"].endswith("documents-storage-unavailable")
    assert "retired" in got.json()["detail"]
    signed = await docs.client.post(f"{url}/signed-url", json={}, headers=agent.headers)
    through = await docs.client.get(signed.json()["url"])
    assert through.status_code == 503, through.text
