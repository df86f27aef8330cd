"""A background import's ANALYZE runs beside its batches, one run at a time, and the job
reads ``done`` only once the last run ended (``crm2_core.kit.import_jobs``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from crm2_core.kit import import_jobs

IMPORT = "/api/v1/deals/clients/import"
ROWS = 2_500  # three batches of deals' 1,000


def _file(rows: int) -> bytes:
    lines = ["kind,name,emails", *(f"person,Client {i},s{i}@stats.example" for i in range(rows))]
    return ("\n".join(lines) + "\n").encode()


async def test_a_jobs_statistics_run_beside_its_batches_and_before_its_end(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await crm2_app_factory(plugins=["deals"])
    app.context.plugin_settings("deals").import_background_rows = 10
    admin = await app.login("admin")
    release, calls = asyncio.Event(), []

    async def slow_statistics(session_factory: Any, least: int = 0) -> list[str]:
        calls.append(session_factory)
        await release.wait()
        raise RuntimeError("no statistics today")  # logged: it stops nothing

    async def clients() -> int:
        async with app.context.session_factory() as session:
            return int((await session.execute(text("SELECT count(*) FROM deals_client"))).scalar())

    # The job looks whether the run is busy right after each batch's write returns, with
    # no await between: once the last write returned (seen from here, when the job waits
    # next), every look happened. Its rows being committed is not enough: the job may not
    # have looked after the last batch yet (CI on SQLite saw a second run then).
    written: list[int] = []
    write = import_jobs._JobWork._write

    async def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        await write(self, *args, **kwargs)
        written.append(len(args[0]))

    monkeypatch.setattr(import_jobs, "analyze_grown_tables", slow_statistics)
    monkeypatch.setattr(import_jobs._JobWork, "_write", counted)
    files = {"file": ("clients.csv", _file(ROWS), "text/csv")}
    accepted = await app.client.post(IMPORT, files=files, headers=admin)
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["location"]
    for _ in range(1_000):  # every batch is written while the first run still holds
        if sum(written) == ROWS:
            break
        await asyncio.sleep(0.01)
    assert await clients() == ROWS and len(calls) == 1
    assert (await app.client.get(location, headers=admin)).json()["status"] == "running"
    release.set()
    await app.settle_jobs()
    job = (await app.client.get(location, headers=admin)).json()
    assert (job["status"], job["created"], job["processed"]) == ("done", ROWS, ROWS)
    assert len(calls) == 1  # the run was busy at each later batch: no second one
