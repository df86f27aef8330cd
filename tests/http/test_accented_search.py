"""A list's ``q`` finds text whatever its letters' case, accented ones included, on both
databases: SQLite's own ``lower()`` and ``LIKE`` fold ASCII only, PostgreSQL folds all."""

from __future__ import annotations

import pytest

from crm2_core.testing import Crm2TestApp

API = "/api/v1/deals"

pytestmark = pytest.mark.crm2_plugins("deals")


async def _ids(crm2: Crm2TestApp, headers: dict[str, str], path: str, q: str) -> set[str]:
    response = await crm2.client.get(f"{API}/{path}", params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_q_finds_accented_text_in_any_case(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    made = await crm2.client.post(
        f"{API}/clients", json={"kind": "person", "name": "Élise Øster"}, headers=admin
    )
    assert made.status_code == 201, made.text
    client = made.json()
    other = await crm2.client.post(
        f"{API}/clients", json={"kind": "person", "name": "Elise Oster"}, headers=admin
    )
    assert other.status_code == 201, other.text
    body = {"title": "ÉCOLE Ünterwegs", "client_id": client["id"], "value": "1.00"}
    deal = await crm2.client.post(f"{API}/deals", json=body, headers=admin)
    assert deal.status_code == 201, deal.text
    plain = {"title": "Ecole", "client_id": client["id"], "value": "1.00"}
    assert (await crm2.client.post(f"{API}/deals", json=plain, headers=admin)).status_code == 201

    for q in ("élise", "ÉLISE", "øster", "ØSTER"):
        assert await _ids(crm2, admin, "clients", q) == {client["id"]}, q
    for q in ("école", "ÉCOLE", "école ü", "ÜNTERWEGS", "ünterwegs"):
        assert await _ids(crm2, admin, "deals", q) == {deal.json()["id"]}, q


async def test_q_and_folded_names_agree_on_final_sigma_and_sharp_s(crm2: Crm2TestApp) -> None:
    """Python's ``lower()`` writes a final capital sigma as ``ς`` ("ΚΟΣΜΟΣ" → "κοσμος"),
    PostgreSQL's ``lower()`` as the plain sigma, and SQLite used ``casefold`` (ß → ss) where
    PostgreSQL keeps ``ß``: the same ``q`` found different rows on the two databases."""
    admin = await crm2.login("admin")
    made = await crm2.client.post(
        f"{API}/clients", json={"kind": "person", "name": "Ulysses"}, headers=admin
    )
    assert made.status_code == 201, made.text
    client_id = made.json()["id"]
    ids = {}
    for title in ("ΚΟΣΜΟΣ", "κόσμος", "Straße"):
        body = {"title": title, "client_id": client_id, "value": "1.00"}
        deal = await crm2.client.post(f"{API}/deals", json=body, headers=admin)
        assert deal.status_code == 201, deal.text
        ids[title] = deal.json()["id"]

    for q in ("ΚΟΣΜΟΣ", "κοσμος", "κοσμοσ", "ΟΣΜΟΣ", "οσμος"):
        assert await _ids(crm2, admin, "deals", q) == {ids["ΚΟΣΜΟΣ"]}, q
    for q in ("ΚΌΣΜΟΣ", "κόσμοσ", "όσμος", "ΌΣΜΟΣ"):
        assert await _ids(crm2, admin, "deals", q) == {ids["κόσμος"]}, q
    assert await _ids(crm2, admin, "deals", "STRASSE") == set()
    assert await _ids(crm2, admin, "deals", "STRAẞE") == {ids["Straße"]}
