"""A large client import runs as a background job: 202 + Location, a status to poll."""

from __future__ import annotations

import gc
from typing import Any

from crm2_deals.models import Client
from crm2_deals.service.client_import import CLIENT_IMPORT
from deals_kit import API, Deals, User
from sqlalchemy import event, func, select

ROWS = 12  # above the threshold the tests set: the kit decides by size


def _file(rows: int, *, extra: str = "") -> bytes:
    lines = ["kind,name,emails,tax_id,tags"]
    lines += [f"person,Client {i},c{i}@bulk.example,,bulk" for i in range(rows)]
    return ("\n".join(lines) + "\n" + extra).encode()


async def _post(deals: Deals, user: User, content: bytes, **params: str) -> Any:
    files = {"file": ("clients.csv", content, "text/csv")}
    return await deals.client.post(
        f"{API}/clients/import", params=params, files=files, headers=user.headers
    )


async def _count(deals: Deals) -> int:
    async with deals.app.context.session_factory() as session:
        return int((await session.execute(select(func.count()).select_from(Client))).scalar_one())


def _threshold(deals: Deals, rows: int) -> None:
    deals.app.context.plugin_settings("deals").import_background_rows = rows


async def _finished(deals: Deals, user: User, location: str) -> dict[str, Any]:
    await deals.app.settle_jobs()
    response = await deals.client.get(location, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_large_file_is_a_background_job_with_a_status(deals: Deals) -> None:
    admin = await deals.user("admin")
    _threshold(deals, 10)
    # row 14 repeats row 2's e-mail: the job upserts across its batches as the request does
    extra = "person,Client 0 again,c0@bulk.example,,more\n"
    accepted = await _post(deals, admin, _file(ROWS, extra=extra))
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["location"]
    assert location == f"{API}/clients/import/{accepted.json()['id']}"
    assert accepted.json()["status"] == "queued" and accepted.json()["total"] == ROWS + 1
    job = await _finished(deals, admin, location)
    assert (job["status"], job["phase"], job["applied"]) == ("done", "done", True)
    assert (job["created"], job["updated"], job["skipped"], job["processed"]) == (12, 1, 0, 13)
    assert job["errors"] == [] and job["error_count"] == 0
    assert await _count(deals) == ROWS
    assert len(await deals.events("deals.client.created")) == ROWS


async def test_job_with_row_errors_writes_nothing_unless_partial(deals: Deals) -> None:
    admin = await deals.user("admin")
    _threshold(deals, 10)
    extra = "robot,R2,,,\nperson,Z,z@bulk.example,,\n"
    bad = _file(ROWS, extra=extra).replace(b",tags\n", b",owner_email\n", 1)
    bad = bad.replace(b",bulk\n", b",\n")
    bad = bad.replace(b"z@bulk.example,,", b"z@bulk.example,,nobody@x.example")
    refused = await _finished(deals, admin, (await _post(deals, admin, bad)).headers["location"])
    assert (refused["status"], refused["applied"], refused["error_count"]) == ("refused", False, 2)
    assert [e["row"] for e in refused["errors"]] == [14, 15]
    assert "kind" in refused["errors"][0]["reason"]
    assert "nobody@x.example" in refused["errors"][1]["reason"]
    # the problem a refused upload answers with in the request (422 import-refused)
    in_request = await _post(deals, admin, bad, background="false")
    assert in_request.status_code == 422
    expected = {k: v for k, v in in_request.json().items() if k not in ("instance", "request_id")}
    problem = refused["problem"]
    assert problem["type"] == "urn:crm2:problem:import-refused" and problem["status"] == 422
    assert problem["report"]["errors"] == expected["report"]["errors"]
    assert (problem["title"], problem["detail"]) == (expected["title"], expected["detail"])
    assert await _count(deals) == 0
    partial = await _post(deals, admin, bad, partial="true")
    done = await _finished(deals, admin, partial.headers["location"])
    assert (done["status"], done["problem"]) == ("done", None)
    assert (done["applied"], done["created"], done["error_count"]) == (True, ROWS, 2)
    assert await _count(deals) == ROWS


async def test_dry_run_job_reports_and_writes_nothing(deals: Deals) -> None:
    admin = await deals.user("admin")
    accepted = await _post(deals, admin, _file(3), dry_run="true", background="true")
    assert accepted.status_code == 202
    job = await _finished(deals, admin, accepted.headers["location"])
    assert (job["created"], job["applied"], job["dry_run"]) == (3, False, True)
    assert await _count(deals) == 0
    assert await deals.events() == []


async def test_refused_file_is_422_before_any_job(deals: Deals) -> None:
    admin = await deals.user("admin")
    _threshold(deals, 1)
    no_name = await _post(deals, admin, b"kind,emails\n" + b"person,a@b.example\n" * 5)
    assert no_name.status_code == 422
    assert no_name.headers["content-type"].startswith("application/problem+json")
    latin1 = await _post(deals, admin, "name\nJos\xe9\nAnn\n".encode("latin-1"))
    assert latin1.status_code == 422 and "UTF-8" in latin1.json()["detail"]
    deals.app.context.plugin_settings("deals").import_max_rows = 5
    too_big = await _post(deals, admin, _file(6))
    assert too_big.status_code == 422 and "more than 5 rows" in too_big.json()["detail"]
    await deals.app.settle_jobs()
    assert await _count(deals) == 0


async def test_job_status_is_the_starters(deals: Deals) -> None:
    admin, manager = await deals.user("admin"), await deals.user("manager")
    agent = await deals.user("agent")
    accepted = await _post(deals, manager, _file(2), background="true")
    location = accepted.headers["location"]
    await deals.app.settle_jobs()
    assert (await deals.client.get(location, headers=manager.headers)).status_code == 200
    # an admin sees every record (deals:all_records); an agent has no deals:import
    assert (await deals.client.get(location, headers=admin.headers)).status_code == 200
    assert (await deals.client.get(location, headers=agent.headers)).status_code == 403
    unknown = location.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    assert (await deals.client.get(unknown, headers=manager.headers)).status_code == 404


async def test_rows_are_parsed_batch_by_batch_with_the_same_report(deals: Deals) -> None:
    """The kit parses a batch at a time (not the whole file first): a batch whose rows are
    all refused, an upsert of an earlier batch's client, and progress counting every row
    read give the same report in a job and in the request."""
    admin = await deals.user("admin")
    _threshold(deals, 10)
    good = [f"person,Client {i},c{i}@bulk.example,," for i in range(8)]
    bad = [f"robot,Robot {i},r{i}@bulk.example,," for i in range(4)]  # rows 6-9: one batch
    lines = [
        "kind,name,emails,tax_id,tags",
        *good[:4],
        *bad,
        *good[4:],
        "person,Again,c0@bulk.example,,",
    ]
    content = ("\n".join(lines) + "\n").encode()
    spec = CLIENT_IMPORT
    object.__setattr__(spec, "batch_size", 4)  # frozen dataclass; restored below
    try:
        refused = await _finished(
            deals, admin, (await _post(deals, admin, content)).headers["location"]
        )
        assert (refused["status"], refused["processed"]) == ("refused", 13)
        assert [e["row"] for e in refused["errors"]] == [6, 7, 8, 9]
        assert await _count(deals) == 0
        location = (await _post(deals, admin, content, partial="true")).headers["location"]
        job = await _finished(deals, admin, location)
        assert (job["applied"], job["processed"], job["total"]) == (True, 13, 13)
        assert (job["created"], job["updated"], job["error_count"]) == (8, 1, 4)
        assert await _count(deals) == 8
        assert len(await deals.events("deals.client.created")) == 8
        again = await _post(deals, admin, content, partial="true", background="false")
        assert again.status_code == 200, again.text
        report = again.json()
        # rows 2 and 14 name the same client in turn ("Client 0", then "Again"): 2 updates
        assert (report["created"], report["updated"], report["skipped"]) == (0, 2, 7)
        assert [e["row"] for e in report["errors"]] == [6, 7, 8, 9]
    finally:
        object.__setattr__(spec, "batch_size", 1_000)


async def test_a_job_parses_each_row_once_across_its_two_passes(deals: Deals) -> None:
    """The check pass keeps the batches it parsed; the write pass takes them."""
    admin = await deals.user("admin")
    spec, parse = CLIENT_IMPORT, CLIENT_IMPORT.parse
    parsed: list[str] = []

    def counting(values: dict[str, str]) -> Any:
        parsed.append(values["name"])
        return parse(values)

    object.__setattr__(spec, "parse", counting)  # frozen dataclass; restored below
    object.__setattr__(spec, "batch_size", 5)
    try:
        location = (await _post(deals, admin, _file(ROWS), background="true")).headers["location"]
        job = await _finished(deals, admin, location)
    finally:
        object.__setattr__(spec, "parse", parse)
        object.__setattr__(spec, "batch_size", 1_000)
    assert (job["status"], job["created"], job["processed"]) == ("done", ROWS, ROWS)
    assert sorted(parsed) == sorted(f"Client {i}" for i in range(ROWS))
    assert await _count(deals) == ROWS


async def test_job_batches_plan_per_execution_and_pause_the_collector(deals: Deals) -> None:
    """Each batch transaction of a job asks PostgreSQL for custom plans first (a generic
    plan made on the empty tables would scan them whole as they grow) and writes its
    clients with the cyclic collector paused."""
    admin = await deals.user("admin")
    _threshold(deals, 10)
    seen: list[tuple[str, bool]] = []

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        seen.append((text, gc.isenabled()))

    engine = deals.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        accepted = await _post(deals, admin, _file(ROWS))
        job = await _finished(deals, admin, accepted.headers["location"])
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert job["status"] == "done" and await _count(deals) == ROWS
    inserts = [paused for text, paused in seen if text.startswith("INSERT INTO deals_client ")]
    assert inserts and not any(inserts)  # gc.isenabled() was False for each
    if engine.dialect.name == "postgresql":
        texts = [text for text, _ in seen]
        first_insert = next(
            i for i, t in enumerate(texts) if t.startswith("INSERT INTO deals_client ")
        )
        assert "plan_cache_mode = force_custom_plan" in " ".join(texts[:first_insert])
    assert gc.isenabled()


async def test_job_reports_the_columns_it_ignores_as_the_request_does(deals: Deals) -> None:
    """A job's status (and a refused job's problem) names the header's unknown columns, as the
    synchronous ImportReport does: a misspelt column must not vanish because a file is big."""
    admin = await deals.user("admin")
    _threshold(deals, 1)
    good = _file(3).replace(b",tags\n", b",emials,evil\n", 1)
    accepted = await _post(deals, admin, good)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["ignored_columns"] == ["emials", "evil"]
    done = await _finished(deals, admin, accepted.headers["location"])
    assert (done["status"], done["ignored_columns"]) == ("done", ["emials", "evil"])
    bad = good + b"robot,R2,,,\n"
    refused = await _finished(deals, admin, (await _post(deals, admin, bad)).headers["location"])
    assert refused["status"] == "refused"
    assert refused["problem"]["report"]["ignored_columns"] == ["emials", "evil"]
    in_request = await _post(deals, admin, bad, background="false")
    assert in_request.json()["report"]["ignored_columns"] == ["emials", "evil"]
    clean = await _finished(deals, admin, (await _post(deals, admin, _file(3))).headers["location"])
    assert clean["ignored_columns"] == []
