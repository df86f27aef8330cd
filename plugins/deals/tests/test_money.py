"""Money: decimal strings in and out, integer minor units stored, never a float."""

from __future__ import annotations

import uuid

from crm2_deals.models import Deal
from deals_kit import API, Deals

ROUND_TRIPS = [
    ("12345678901.23", "EUR", 1234567890123),
    ("0.10", "EUR", 10),
    ("1000", "JPY", 1000),
    ("1.234", "KWD", 1234),
    ("999999999999999.99", "EUR", 99999999999999999),
]
BAD = [
    (12.5, "EUR"), ("1.234", "EUR"), ("1.5", "JPY"), ("-1.00", "EUR"), ("1e3", "EUR"),
    ("NaN", "EUR"), ("", "EUR"), ("1.00", "EURO"), ("1.00", "E1R"), (True, "EUR"),
]  # fmt: skip


async def test_value_round_trips_exactly(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    for value, currency, minor in ROUND_TRIPS:
        deal = await deals.create_deal(admin.headers, client["id"], value=value, currency=currency)
        assert deal["value"] == value
        got = await deals.client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
        assert got.json()["value"] == value
        async with deals.app.context.session_factory() as session:
            row = await session.get(Deal, uuid.UUID(deal["id"]))
        assert row is not None and (row.value_minor, row.currency) == (minor, currency)


async def test_value_is_shown_with_the_currency_decimals(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"], value="7.5", currency="eur")
    assert (deal["value"], deal["currency"]) == ("7.50", "EUR")


async def test_bad_money_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    for value, currency in BAD:
        body = {"title": "X", "client_id": client["id"], "value": value, "currency": currency}
        response = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
        assert response.status_code == 422, (value, currency, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await deals.client.get(f"{API}/deals", headers=admin.headers)).json()["items"] == []


async def test_a_json_integer_is_refused_like_a_float(deals: Deals) -> None:
    """An integer would skip the 15-digit check (10**20 reached the database): strings only."""
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    for value in (10, 10**20, 2**63):
        body = {"title": "X", "client_id": client["id"], "value": value, "currency": "EUR"}
        response = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "value"]
    assert (await deals.client.get(f"{API}/deals", headers=admin.headers)).json()["items"] == []


async def test_an_unknown_currency_code_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    body = {"title": "X", "client_id": client["id"], "value": "1.00", "currency": "XYZ"}
    response = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "currency"]
    listed = await deals.client.get(f"{API}/deals?currency=XYZ", headers=admin.headers)
    assert listed.status_code == 422, listed.text
    assert listed.json()["errors"][0]["loc"] == ["query", "currency"]


async def test_patch_money_checks(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"], value="10.50")
    url, headers = f"{API}/deals/{deal['id']}", {**admin.headers, "If-Match": '"v1"'}
    assert (await deals.client.patch(url, json={"value": 3.2}, headers=headers)).status_code == 422
    to_jpy = await deals.client.patch(url, json={"currency": "JPY"}, headers=headers)
    assert to_jpy.status_code == 422
    ok = await deals.client.patch(url, json={"value": "1050", "currency": "JPY"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["value"] == "1050"
