"""On PostgreSQL an import writes its new clients, their e-mail rows and their events with
COPY (``insert_rows``); the rows and events are the ones SQLite's INSERTs store."""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Client, ClientEmail
from deals_kit import API, Deals
from sqlalchemy import event, select

from crm2_core.testing import TestDatabase

ROWS = 24  # above insert_rows' COPY_FROM_ROWS: the batch's new clients go as one COPY


def _file() -> bytes:
    lines = ["kind,name,emails,phones,tax_id,address,tags"]
    for i in range(ROWS):
        emails = f"c{i}@copy.example" + (f";C{i}.Alt@Copy.example" if i % 3 == 0 else "")
        lines.append(
            f"{'person' if i % 2 == 0 else 'company'},Client {i:02d},{emails},+39 06 {i},"
            f"{f'T{i}' if i % 4 == 0 else ''},{f'Via {i}' if i % 5 == 0 else ''},"
            f"{'a;b' if i % 2 else ''}"
        )
    lines.append("person,Client 03 again,c3@copy.example,,,,c")  # updates the 4th row's client
    return ("\n".join(lines) + "\n").encode()


def _expected_client(i: int, owner: str) -> dict[str, Any]:
    emails = [f"c{i}@copy.example", *([f"c{i}.alt@copy.example"] if i % 3 == 0 else [])]
    name = f"Client {i:02d}"
    return {
        "kind": "person" if i % 2 == 0 else "company", "name": name, "emails": emails,
        "phones": [f"+39 06 {i}"], "tax_id": f"T{i}" if i % 4 == 0 else None,
        "address": f"Via {i}" if i % 5 == 0 else "", "tags": ["a", "b"] if i % 2 else [],
        "owner_id": owner, "archived": False, "version": 1,
        "search_text": " ".join([name, *emails, f"+39 06 {i}", f"3906{i}"]).lower(),
    }  # fmt: skip


def _row(client: Client) -> dict[str, Any]:
    keys = ("kind", "name", "emails", "phones", "tax_id", "address", "tags", "archived",
            "version", "search_text")  # fmt: skip
    return {**{k: getattr(client, k) for k in keys}, "owner_id": str(client.owner_id)}


async def test_import_copies_the_rows_sqlite_inserts(
    deals: Deals, crm2_database: TestDatabase
) -> None:
    admin = await deals.user("admin")
    deals.app.context.plugin_settings("deals").import_background_rows = 10
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(("INSERT INTO deals_client ", "INSERT INTO deals_client_email")):
            inserts.append(statement)

    engine = deals.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        files = {"file": ("clients.csv", _file(), "text/csv")}
        accepted = await deals.client.post(
            f"{API}/clients/import", files=files, headers=admin.headers
        )
        assert accepted.status_code == 202, accepted.text
        await deals.app.settle_jobs()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    job = (await deals.client.get(accepted.headers["location"], headers=admin.headers)).json()
    assert (job["status"], job["created"], job["updated"]) == ("done", ROWS, 1), job
    # COPY on PostgreSQL (the upsert adds no e-mail: it writes no e-mail row either)
    assert len(inserts) == (0 if crm2_database.backend == "postgresql" else 2)

    owner = str(admin.id)
    async with deals.app.context.session_factory() as session:
        clients = {c.name: c for c in (await session.execute(select(Client))).scalars()}
        emails = list((await session.execute(select(ClientEmail))).scalars())
    expected = {f"Client {i:02d}": _expected_client(i, owner) for i in range(ROWS)}
    # the upsert (an ORM update): its name and kind, one tag more, one version more
    expected["Client 03 again"] = expected.pop("Client 03") | {
        "name": "Client 03 again", "kind": "person", "tags": ["a", "b", "c"], "version": 2,
        "search_text": clients["Client 03 again"].search_text,
    }  # fmt: skip
    assert {name: _row(c) for name, c in clients.items()} == expected
    assert all(c.created_at == c.updated_at for c in clients.values() if c.version == 1)
    by_id = {c.id: name for name, c in clients.items()}
    assert sorted((by_id[e.client_id], e.email) for e in emails) == sorted(
        (name, e) for name, row in expected.items() for e in row["emails"]
    )
    # one event per client created, in the file's order, with the data it was created with
    created = await deals.events("deals.client.created")
    assert [(by_id[uuid.UUID(e.subject)], e.data) for e in created] == [
        ("Client 03 again" if i == 3 else f"Client {i:02d}",
         {"name": f"Client {i:02d}", "kind": "person" if i % 2 == 0 else "company",
          "owner_id": owner})
        for i in range(ROWS)
    ]  # fmt: skip
    assert {(e.version, e.actor_kind, e.actor_id) for e in created} == {(1, "user", owner)}
