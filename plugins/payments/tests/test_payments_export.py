"""The CSV export's bytes: every kind of cell against the expected text, on one page or many.

The rows are written straight into the table (fixed ids and times, and money the API
would refuse: negative, or the largest BIGINT), so the expected file is exact text. It
pins the output of ``payments/1``: a faster export must still write these bytes.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from crm2_payments.models import Payment, Schedule
from crm2_payments.service import export as export_service
from payments_kit import API, Payments

from crm2_core.testing.sse import serving

SCHEDULE = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
HEADER = (
    "id,direction,status,amount,paid,refunded,outstanding,currency,due_date,paid_at,method,"
    "payer,payee,reference,policy_id,client_id,insurer,product,schedule_id,instalment,"
    "provider,external_id,owner_id,created_at,updated_at\r\n"
)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


def _at(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, micro, tzinfo=UTC)


ROWS: list[dict[str, Any]] = [
    # cells a spreadsheet would run or calculate (a phone), and a plain number it would not
    dict(id=_id(1), direction="incoming", status="due", amount_minor=1250, currency="EUR",
         due_date=date(2099, 4, 1), method="=1+1", payer="@x", payee="+cmd", reference="-3",
         policy_id="=HYPERLINK(1)", client_id="+39 06 1", insurer="-x", product="\tTab",
         external_id="@sum", created_at=_at(5, 8), updated_at=_at(5, 9, 0, 0, 500000)),
    # quotes, commas, a newline, unicode, a schedule, microseconds
    dict(id=_id(2), direction="outgoing", status="partially_paid", amount_minor=100_000,
         paid_minor=40_000, refunded_minor=2_500, currency="EUR", due_date=date(2099, 2, 28),
         paid_at=_at(1, 12, 30, 45, 123456), method="card", payer='say "hi"',
         payee="Rossi, Mario", reference="line1\nline2", policy_id="pol-1", client_id="c-1",
         insurer="Zürich ☂ Versicherung", product="生命保険", schedule_id=SCHEDULE,
         instalment=2, provider="stripe", external_id="ch_1", created_at=_at(4, 8),
         updated_at=_at(4, 8, 0, 1)),
    # NULLs and empty text; a cancelled payment owes nothing; exponent 0
    dict(id=_id(3), direction="refund", status="cancelled", amount_minor=7, currency="JPY",
         created_at=_at(3, 8), updated_at=_at(3, 8)),
    # negative money, a CR, a guard look-alike (one more apostrophe, so the kit's unguard
    # gives the value back), a leading space, a lone "="
    dict(id=_id(4), direction="incoming", status="paid", amount_minor=-5, paid_minor=250,
         currency="EUR", method="\rx", payer="'=already", payee=" =space", reference="=",
         created_at=_at(2, 8), updated_at=_at(2, 8)),
    # the largest BIGINT, exponent 3, a negative outstanding amount
    dict(id=_id(5), direction="incoming", status="overdue", amount_minor=1_234_567,
         paid_minor=9_223_372_036_854_775_807, refunded_minor=1, currency="KWD",
         created_at=_at(1, 8), updated_at=_at(1, 8)),
    # exponent 4; a lone "-" is not a plain number (guarded)
    dict(id=_id(6), direction="incoming", status="planned", amount_minor=10_001,
         currency="CLF", payer="-", created_at=_at(1, 7), updated_at=_at(1, 7)),
]  # fmt: skip


def expected(owner: uuid.UUID) -> str:
    """The file for ``ROWS`` in the default order (newest first), written out by hand."""
    o = str(owner)
    return HEADER + (
        f"{_id(1)},incoming,due,12.50,0.00,0.00,12.50,EUR,2099-04-01,,'=1+1,'@x,'+cmd,-3,"
        f"'=HYPERLINK(1),'+39 06 1,'-x,'\tTab,,,manual,'@sum,{o},2026-03-05T08:00:00+00:00,"
        "2026-03-05T09:00:00.500000+00:00\r\n"
        f"{_id(2)},outgoing,partially_paid,1000.00,375.00,25.00,625.00,EUR,2099-02-28,"
        '2026-03-01T12:30:45.123456+00:00,card,"say ""hi""","Rossi, Mario","line1\nline2",'
        f"pol-1,c-1,Zürich ☂ Versicherung,生命保険,{SCHEDULE},2,stripe,ch_1,{o},"
        "2026-03-04T08:00:00+00:00,2026-03-04T08:00:01+00:00\r\n"
        f"{_id(3)},refund,cancelled,7,0,0,0,JPY,,,,,,,,,,,,,manual,,{o},"
        "2026-03-03T08:00:00+00:00,2026-03-03T08:00:00+00:00\r\n"
        f"{_id(4)},incoming,paid,-0.05,2.50,0.00,-2.55,EUR,,,\"'\rx\",''=already, =space,'=,"
        f",,,,,,manual,,{o},2026-03-02T08:00:00+00:00,2026-03-02T08:00:00+00:00\r\n"
        f"{_id(5)},incoming,overdue,1234.567,9223372036854775.806,0.001,"
        f"-9223372036853541.239,KWD,,,,,,,,,,,,,manual,,{o},2026-03-01T08:00:00+00:00,"
        "2026-03-01T08:00:00+00:00\r\n"
        f"{_id(6)},incoming,planned,1.0001,0.0000,0.0000,1.0001,CLF,,,,'-,,,,,,,,,manual,,{o},"
        "2026-03-01T07:00:00+00:00,2026-03-01T07:00:00+00:00\r\n"
    )


async def _load(payments: Payments) -> uuid.UUID:
    owner = (await payments.user("agent")).id
    async with payments.app.context.session_factory() as session:
        session.add(
            Schedule(
                id=SCHEDULE, policy_id="pol-1", premium_minor=100_000, currency="EUR",
                frequency="annual", instalments=1, start_date=date(2026, 1, 1), owner_id=owner,
            )
        )  # fmt: skip
        await session.flush()
        session.add_all(Payment(owner_id=owner, **fields) for fields in ROWS)
        await session.commit()
    return owner


async def _export(payments: Payments, **params: str) -> bytes:
    manager = await payments.user("manager")
    response = await payments.client.get(
        f"{API}/payments/export.csv", params=params, headers=manager.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Export-Schema"] == "payments/1"
    return response.content


@pytest.mark.parametrize("page_size", [5000, 2, 1])
async def test_export_writes_exactly_the_expected_bytes(
    payments: Payments, monkeypatch: pytest.MonkeyPatch, page_size: int
) -> None:
    monkeypatch.setattr(export_service, "EXPORT_PAGE_SIZE", page_size)
    owner = await _load(payments)
    assert (await _export(payments)).decode() == expected(owner)


async def test_export_pages_in_another_sort_with_its_filters(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_service, "EXPORT_PAGE_SIZE", 2)
    owner = await _load(payments)
    lines = expected(owner).split("\r\n")
    by_amount = [lines[4], lines[3], lines[1], lines[6], lines[2], lines[5]]  # -5 … 1,234,567
    assert (await _export(payments, sort="amount")).decode() == HEADER + "".join(
        line + "\r\n" for line in by_amount
    )
    only_eur = await _export(payments, currency="EUR", sort="-updated_at")
    assert only_eur.decode() == HEADER + "".join(line + "\r\n" for line in [*lines[1:3], lines[4]])


async def test_an_export_stops_when_its_caller_is_disabled_mid_way(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served on a real socket: the page after the change is never sent, and the client
    sees the transfer cut off."""
    monkeypatch.setattr(export_service, "EXPORT_PAGE_SIZE", 2)
    await _load(payments)
    admin = await payments.user("admin")
    manager = await payments.user("manager")
    changed = asyncio.Event()
    authenticator = payments.app.context.authenticator
    recheck = authenticator.recheck
    checks = 0

    async def paused(principal: Any) -> Any:  # the check before the second page waits
        nonlocal checks
        checks += 1
        if checks == 2:
            await asyncio.wait_for(changed.wait(), 10)
        return await recheck(principal)

    monkeypatch.setattr(authenticator, "recheck", paused)
    received = b""
    async with serving(payments.app) as url, httpx.AsyncClient(base_url=url) as http:
        path = f"{API}/payments/export.csv"
        async with http.stream("GET", path, headers=manager.headers) as response:
            assert response.status_code == 200
            chunks = response.aiter_raw()
            while received.count(b"\r\n") < 3:  # the header and the first page
                received += await anext(chunks)
            user = f"/api/v1/auth/users/{manager.id}"
            etag = (await payments.client.get(user, headers=admin.headers)).headers["ETag"]
            disabled = await payments.client.patch(
                user, json={"is_active": False}, headers={**admin.headers, "If-Match": etag}
            )
            assert disabled.status_code == 200, disabled.text
            changed.set()
            with pytest.raises(httpx.RemoteProtocolError):
                async for chunk in chunks:
                    received += chunk
    assert received.count(b"\r\n") == 3


async def test_balances_sum_what_the_list_shows_with_the_same_filters(
    payments: Payments,
) -> None:
    """The console shows the balances beside the filtered list: they took only client_id and
    policy_id, so a list filtered by text or due dates showed the balances of everything."""
    manager = await payments.user("manager")
    await payments.create(manager, amount="10.00", reference="INV-A", due_date="2026-01-10")
    await payments.create(manager, amount="20.00", reference="INV-B", due_date="2026-02-10")
    await payments.create(manager, amount="40.00", reference="other", due_date="2026-03-10")

    async def due(**params: str) -> list[str]:
        answer = await payments.client.get(
            f"{API}/balances", params=params, headers=manager.headers
        )
        assert answer.status_code == 200, answer.text
        return [b["due"] for b in answer.json()["balances"]]

    async def listed(**params: str) -> int:
        answer = await payments.client.get(
            f"{API}/payments", params=params, headers=manager.headers
        )
        return len(answer.json()["items"])

    assert await due() == ["70.00"]
    for params, expected, rows in (
        ({"q": "INV"}, ["30.00"], 2),
        ({"due_from": "2026-02-01"}, ["60.00"], 2),
        ({"q": "INV", "due_to": "2026-01-31"}, ["10.00"], 1),
        ({"currency": "USD"}, [], 0),
    ):
        assert await due(**params) == expected, params
        assert await listed(**params) == rows, params
    bad = await payments.client.get(
        f"{API}/balances", params={"due_from": "soon"}, headers=manager.headers
    )
    assert bad.status_code == 422


async def test_due_from_later_than_due_to_is_a_422_naming_both(payments: Payments) -> None:
    """The list, the export and the balances answered 200 and nothing for a due range given
    backwards (the client swapped the dates): now a 422 problem naming both parameters."""
    manager = await payments.user("manager")
    await payments.create(manager, amount="10.00", due_date="2026-01-10")
    backwards = {"due_from": "2026-02-01", "due_to": "2026-01-01"}
    for path in ("/payments", "/payments/export.csv", "/balances"):
        answer = await payments.client.get(
            f"{API}{path}", params=backwards, headers=manager.headers
        )
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        detail = answer.json()["detail"]
        assert "due_from (2026-02-01) is later than due_to (2026-01-01)" in detail, detail
    same_day = {"due_from": "2026-01-10", "due_to": "2026-01-10"}
    listed = await payments.client.get(f"{API}/payments", params=same_day, headers=manager.headers)
    assert len(listed.json()["items"]) == 1, listed.text
