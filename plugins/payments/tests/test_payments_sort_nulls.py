"""Sorting by ``due_date``, which is nullable: the list and the export return every payment.

Before the kit ordered NULLs explicitly, SQLite refused (400) the cursor it had just
issued for an undated payment, and PostgreSQL's keyset left undated payments out.
The documented order: NULL is greater than every date, so undated payments come last
ascending and first descending, ties by id in the same direction.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from crm2_payments.service import export as export_service
from payments_kit import API, Payments, User


async def _walk(payments: Payments, user: User, sort: str, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, str | int] = {"sort": sort, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await payments.client.get(f"{API}/payments", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        ids.extend(item["id"] for item in response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination did not end")


async def test_paging_and_export_by_due_date_return_undated_payments(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await payments.user("agent")
    dates = [date(2099, 5, 1), None, date(2099, 1, 1), None, date(2099, 5, 1), None]
    created = [
        (await payments.create(agent, due_date=d.isoformat() if d else None))["id"] for d in dates
    ]
    dated = sorted(
        ((d, i) for d, i in zip(dates, created, strict=True) if d is not None),
        key=lambda pair: (pair[0], pair[1]),
    )
    undated = sorted(i for d, i in zip(dates, created, strict=True) if d is None)
    ascending = [i for _, i in dated] + undated
    descending = ascending[::-1]

    for limit in (1, 2):
        assert await _walk(payments, agent, "due_date", limit) == ascending, limit
        assert await _walk(payments, agent, "-due_date", limit) == descending, limit

    manager = await payments.user("manager")  # exporting needs payments:export
    monkeypatch.setattr(export_service, "EXPORT_PAGE_SIZE", 1)
    for sort, order in (("due_date", ascending), ("-due_date", descending)):
        response = await payments.client.get(
            f"{API}/payments/export.csv", params={"sort": sort}, headers=manager.headers
        )
        assert response.status_code == 200, response.text
        rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
        assert [row["id"] for row in rows] == order, sort
