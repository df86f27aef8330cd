"""CSV: streamed exports with the list's filters and visibility; the client import report."""

from __future__ import annotations

import csv
import io
from typing import Any

from crm2_deals.models import Client
from crm2_deals.service import clients as clients_service
from crm2_deals.service import deals as deals_service
from deals_kit import API, Deals, User
from sqlalchemy import func, select, update

from crm2_core.api import User as UserRow


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def _import(deals: Deals, user: User, content: str, **params: str) -> Any:
    files = {"file": ("clients.csv", content.encode(), "text/csv")}
    return await deals.client.post(
        f"{API}/clients/import", params=params, files=files, headers=user.headers
    )


async def _client_count(deals: Deals) -> int:
    async with deals.app.context.session_factory() as session:
        return int((await session.execute(select(func.count()).select_from(Client))).scalar_one())


async def test_client_export_streams_pages_with_filters(deals: Deals, monkeypatch: Any) -> None:
    monkeypatch.setattr(clients_service, "EXPORT_PAGE_SIZE", 2)
    admin = await deals.user("admin")
    for i in range(5):
        await deals.create_client(
            admin.headers, name=f"VIP {i}", tags=["vip"], emails=[f"v{i}@x.io"]
        )
    await deals.create_client(admin.headers, name="=HYPERLINK(1)", phones=["+39 06 1"])
    response = await deals.client.get(
        f"{API}/clients/export", params={"tag": "vip", "sort": "name"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="clients-')
    rows = _rows(response.text)
    assert [r["name"] for r in rows] == [f"VIP {i}" for i in range(5)]
    assert rows[0]["emails"] == "v0@x.io" and rows[0]["owner_email"] == admin.email
    everything = _rows(
        (await deals.client.get(f"{API}/clients/export", headers=admin.headers)).text
    )
    formula = next(r for r in everything if "HYPERLINK" in r["name"])
    assert formula["name"] == "'=HYPERLINK(1)" and formula["phones"] == "'+39 06 1"


async def test_deal_export_with_filters(deals: Deals, monkeypatch: Any) -> None:
    monkeypatch.setattr(deals_service, "EXPORT_PAGE_SIZE", 1)
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers, name="Acme")
    pipeline = await deals.pipeline(admin.headers)
    won = deals.stage(pipeline, "Won")["id"]
    await deals.create_deal(admin.headers, client["id"], title="A", value="0.10", stage_id=won)
    await deals.create_deal(admin.headers, client["id"], title="B", value="2.00", stage_id=won)
    await deals.create_deal(admin.headers, client["id"], title="Open one")
    response = await deals.client.get(
        f"{API}/deals/export", params={"status": "won", "sort": "title"}, headers=admin.headers
    )
    assert response.status_code == 200
    rows = _rows(response.text)
    assert [(r["title"], r["value"], r["stage"], r["client_name"]) for r in rows] == [
        ("A", "0.10", "Won", "Acme"),
        ("B", "2.00", "Won", "Acme"),
    ]
    assert rows[0]["pipeline"] == "New business" and rows[0]["currency"] == "EUR"


async def test_export_needs_deals_export(deals: Deals) -> None:
    agent = await deals.user("agent")
    for path in ("clients", "deals"):
        response = await deals.client.get(f"{API}/{path}/export", headers=agent.headers)
        assert response.status_code == 403


IMPORT = """kind,name,emails,phones,tax_id,address,tags,owner_email
person,Anna Rossi,anna@r.example;ANNA@work.example,+39 06 1,,Rome,vip;retail,
company,Beta SpA,info@beta.example,,IT123,,b2b,
"""


async def test_import_dry_run_writes_nothing(deals: Deals) -> None:
    admin = await deals.user("admin")
    response = await _import(deals, admin, IMPORT, dry_run="true")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "created": 2, "updated": 0, "skipped": 0, "errors": [], "dry_run": True, "applied": False,
        "ignored_columns": [],
    }  # fmt: skip
    assert await _client_count(deals) == 0
    assert await deals.events() == []


async def test_import_creates_then_upserts(deals: Deals) -> None:
    admin, manager = await deals.user("admin"), await deals.user("manager")
    first = (await _import(deals, admin, IMPORT)).json()
    assert (first["created"], first["applied"]) == (2, True)
    listed = await deals.client.get(f"{API}/clients", params={"q": "anna"}, headers=admin.headers)
    anna = listed.json()["items"][0]
    assert anna["emails"] == ["anna@r.example", "anna@work.example"]
    assert anna["tags"] == ["vip", "retail"] and anna["owner_id"] == str(admin.id)
    again = f"""name,emails,tax_id,tags,owner_email
Anna Rossi,anna@work.example,,vip,
Beta S.p.A.,,IT123,,{manager.email}
Beta S.p.A.,,IT123,,
"""
    second = (await _import(deals, admin, again)).json()
    assert (second["created"], second["updated"], second["skipped"]) == (0, 1, 2)
    beta = await deals.client.get(f"{API}/clients", params={"q": "beta"}, headers=admin.headers)
    (item,) = beta.json()["items"]
    assert (item["name"], item["owner_id"], item["kind"]) == (
        "Beta S.p.A.",
        str(manager.id),
        "company",
    )
    assert await _client_count(deals) == 2
    assert len(await deals.events("deals.client.created")) == 2


async def test_import_with_errors_writes_nothing_unless_partial(deals: Deals) -> None:
    admin = await deals.user("admin")
    bad = (
        IMPORT + "robot,R2,,,,,,\nperson,,no-name@x.example,,,,,\nperson,Z,,,,,,nobody@x.example\n"
    )
    answer = await _import(deals, admin, bad)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(":import-refused")
    refused = answer.json()["report"]
    assert refused["applied"] is False and refused["created"] == 2
    assert [e["row"] for e in refused["errors"]] == [4, 5, 6]
    assert "kind" in refused["errors"][0]["reason"]
    assert "nobody@x.example" in refused["errors"][2]["reason"]
    assert await _client_count(deals) == 0
    partial = (await _import(deals, admin, bad, partial="true")).json()
    assert partial["applied"] is True and len(partial["errors"]) == 3
    assert await _client_count(deals) == 2


async def test_import_rows_are_numbered_as_a_spreadsheet_shows_them(deals: Deals) -> None:
    """Blank lines count: the row named is the one a spreadsheet opens the file on."""
    admin = await deals.user("admin")
    answer = await _import(deals, admin, "name,kind\n\nAcme,company\n\n\nBeta,martian\n")
    assert answer.status_code == 422, answer.text
    assert [e["row"] for e in answer.json()["report"]["errors"]] == [6]


async def test_an_import_retried_with_its_idempotency_key_is_replayed(deals: Deals) -> None:
    """httpx, like a browser, draws a new multipart boundary for the retry."""
    admin = await deals.user("admin")
    files = {"file": ("clients.csv", IMPORT.encode(), "text/csv")}
    headers = {**admin.headers, "Idempotency-Key": "import-retry-1"}
    first = await deals.client.post(f"{API}/clients/import", files=files, headers=headers)
    retry = await deals.client.post(f"{API}/clients/import", files=files, headers=headers)
    assert first.status_code == retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true" and retry.json() == first.json()
    assert await _client_count(deals) == 2
    other = {"file": ("clients.csv", (IMPORT + "person,Carla,,,,,,\n").encode(), "text/csv")}
    reused = await deals.client.post(f"{API}/clients/import", files=other, headers=headers)
    assert reused.status_code == 422 and reused.json()["type"].endswith("idempotency-key-reused")


async def test_import_file_level_errors(deals: Deals) -> None:
    admin = await deals.user("admin")
    no_name = await _import(deals, admin, "kind,emails\nperson,a@b.example\n")
    assert no_name.status_code == 422
    binary = await deals.client.post(
        f"{API}/clients/import",
        files={"file": ("x.csv", b"\xff\xfe\x00bad", "text/csv")},
        headers=admin.headers,
    )
    assert binary.status_code == 422
    deals.app.context.plugin_settings("deals").import_max_rows = 1
    too_many = await _import(deals, admin, IMPORT)
    assert too_many.status_code == 422 and "more than 1 rows" in too_many.json()["detail"]
    agent = await deals.user("agent")
    assert (await _import(deals, agent, IMPORT)).status_code == 403


async def test_import_cell_no_column_can_store_refuses_the_file(deals: Deals) -> None:
    """read_csv refuses it before any row is parsed (the row model does not search the
    cells again), in a list cell too, in the request and as a job alike."""
    admin = await deals.user("admin")
    for cells in ("Ada\x00,a@b.example,x", "Ada,a@b.example,x;y\x00"):
        for background in ("false", "true"):
            answer = await _import(
                deals, admin, f"name,emails,tags\nBob,b@b.example,\n{cells}\n",
                background=background,
            )  # fmt: skip
            assert answer.status_code == 422, answer.text
            assert "row 3, column" in answer.json()["detail"]
            assert "NUL" in answer.json()["detail"]
    assert await _client_count(deals) == 0


async def test_export_can_be_imported_again(deals: Deals) -> None:
    admin = await deals.user("admin")
    await _import(deals, admin, IMPORT)
    exported = (await deals.client.get(f"{API}/clients/export", headers=admin.headers)).text
    report = (await _import(deals, admin, exported)).json()
    assert (report["created"], report["updated"], report["skipped"]) == (0, 0, 2)
    assert report["errors"] == []


async def test_an_import_handing_a_client_over_moves_its_activities(deals: Deals) -> None:
    manager = await deals.user("manager")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await deals.create_client(leaving.headers, name="Anna", emails=["anna@x.example"])
    note = {"kind": "note", "client_id": client["id"], "subject": "likes calls"}
    posted = await deals.client.post(f"{API}/activities", json=note, headers=leaving.headers)
    assert posted.status_code == 201, posted.text
    rows = f"name,emails,owner_email\nAnna,anna@x.example,{heir.email}\n"
    answer = await _import(deals, manager, rows)
    assert answer.status_code == 200, answer.text
    assert answer.json()["updated"] == 1
    url = f"{API}/activities/{posted.json()['id']}"
    assert (await deals.client.get(url, headers=leaving.headers)).status_code == 404
    assert (await deals.client.get(url, headers=heir.headers)).status_code == 200


async def test_an_import_cannot_hand_a_client_to_a_deactivated_user(deals: Deals) -> None:
    manager, agent, gone = (
        await deals.user("manager"),
        await deals.user("agent"),
        await deals.user("agent"),
    )
    client = await deals.create_client(agent.headers, name="Anna", emails=["anna@x.example"])
    async with deals.app.context.session_factory() as session:
        await session.execute(
            update(UserRow).where(UserRow.id == gone.id).values(is_active=False)  # type: ignore[arg-type]
        )
        await session.commit()
    rows = f"name,emails,owner_email\nAnna,anna@x.example,{gone.email}\n"
    answer = await _import(deals, manager, rows)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["report"]["errors"]
    assert "not an active user" in error["reason"], error
    got = await deals.client.get(f"{API}/clients/{client['id']}", headers=agent.headers)
    assert got.json()["owner_id"] == str(agent.id)


async def test_import_refuses_an_unterminated_quote_naming_its_row(deals: Deals) -> None:
    """A quote never closed swallowed the rest of the file into one cell: a client named
    ``unterminated,q@example.com`` with no e-mail. The file is refused, in a job too."""
    admin = await deals.user("admin")
    for background in ("false", "true"):
        answer = await _import(
            deals, admin, 'name,emails\nAda,a@example.com\n"unterminated,q@example.com\n',
            background=background,
        )  # fmt: skip
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "row 3" in answer.json()["detail"] and "quote" in answer.json()["detail"]
    assert await _client_count(deals) == 0


async def test_import_refuses_a_repeated_column_naming_it(deals: Deals) -> None:
    admin = await deals.user("admin")
    for header in ("name,name,emails", "name,emails,Emails "):
        answer = await _import(deals, admin, f"{header}\nAda,Bob,a@example.com\n")
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "more than once" in detail
        assert ("'name'" if header.startswith("name,name") else "'emails'") in detail
    assert await _client_count(deals) == 0


async def test_import_reports_the_columns_it_ignores(deals: Deals) -> None:
    """Unknown columns are ignored (an export, with its id and dates, imports again), and
    the report names them, so a misspelt column does not vanish unnoticed."""
    admin = await deals.user("admin")
    answer = await _import(deals, admin, "name,evil,emials\nAda,x,a@example.com\n")
    assert answer.status_code == 200, answer.text
    assert answer.json()["ignored_columns"] == ["evil", "emials"]
    clean = await _import(deals, admin, "name,emails\nBob,b@example.com\n")
    assert clean.json()["ignored_columns"] == []
    refused = await _import(deals, admin, "name,evil,emails\n,x,not-an-email\n")
    assert refused.status_code == 422
    assert refused.json()["report"]["ignored_columns"] == ["evil"]


async def test_import_refuses_a_header_cell_with_no_name_naming_its_position(
    deals: Deals,
) -> None:
    """``name,,emails``: the cells under the unnamed column were dropped unseen. Refused, as
    a repeated column is, in the request and as a job alike."""
    admin = await deals.user("admin")
    for header in ("name,,emails", "name,emails, ", "name,emails,,"):
        for background in ("false", "true"):
            answer = await _import(
                deals, admin, f"{header}\nAda,x@example.com,a@example.com\n",
                background=background,
            )  # fmt: skip
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            detail = answer.json()["detail"]
            assert "no name" in detail
            expected = {"name,,emails": "column(s) 2 ", "name,emails, ": "column(s) 3 "}
            assert expected.get(header, "column(s) 3, 4 ") in detail, detail
    assert await _client_count(deals) == 0


async def test_import_errors_name_the_spreadsheet_row_and_the_line_where_they_differ(
    deals: Deals,
) -> None:
    """A quoted cell may hold a line break: row 2 below spans lines 2-3, so row 3 starts on
    line 4. Every message counts rows (the header is row 1), and a syntax error names the
    file's line too when it differs."""
    admin = await deals.user("admin")
    head = 'name,emails,address\nAda,a@example.com,"Via Roma 1\nMilano"\n'
    for background in ("false", "true"):
        quote = await _import(deals, admin, head + '"Bob,b@example.com,x\n', background=background)
        assert quote.status_code == 422, quote.text
        assert "quote opened in row 3 (line 4 of the file)" in quote.json()["detail"]
        nul = await _import(deals, admin, head + "Bob\x00,b@example.com,x\n", background=background)
        assert nul.status_code == 422, nul.text
        assert "row 3, column name" in nul.json()["detail"]
    plain = await _import(deals, admin, 'name,emails\nAda,a@example.com\n"Bob,b@example.com\n')
    assert "quote opened in row 3 is never closed" in plain.json()["detail"]
    refused = await _import(deals, admin, head + "Bob,not-an-email,x\n")
    assert [e["row"] for e in refused.json()["report"]["errors"]] == [3]
    assert await _client_count(deals) == 0


async def test_import_refuses_a_row_with_more_cells_than_the_header(deals: Deals) -> None:
    """A comma in an unquoted cell shifts the row's cells: a row error naming the row and
    its count, never the last cell dropped unseen; in the request and as a job alike."""
    admin = await deals.user("admin")
    content = "name,address\nBob,\nAda,Via Roma 1, Milano\n"
    for background in ("false", "true"):
        answer = await _import(deals, admin, content, background=background)
        if background == "true":
            assert answer.status_code == 202, answer.text
            await deals.app.settle_jobs()
            job = (await deals.client.get(answer.headers["location"], headers=admin.headers)).json()
            assert job["status"] == "refused", job
            report = job["problem"]["report"]
        else:
            assert answer.status_code == 422, answer.text
            report = answer.json()["report"]
        (error,) = report["errors"]
        assert error["row"] == 3
        assert "3 cells" in error["reason"] and "2 columns" in error["reason"]
    assert await _client_count(deals) == 0
    partial = (await _import(deals, admin, content, partial="true")).json()
    assert partial["created"] == 1 and [e["row"] for e in partial["errors"]] == [3]


async def test_import_reads_rows_with_fewer_cells_or_blank_padding(deals: Deals) -> None:
    """Spreadsheets leave out trailing empty cells, or pad a row with them: both import."""
    admin = await deals.user("admin")
    answer = await _import(deals, admin, "name,address,tags\nBob\nAda,Via Roma 1,vip,,\n")
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 2 and answer.json()["errors"] == []
