"""A pipeline's DELETE takes If-Match as an option, as the other deals DELETEs do: sent,
another version is 412 and nothing is deleted."""

from __future__ import annotations

import pytest
from crm2_deals.models import Client, Pipeline
from crm2_deals.service import clients as clients_service
from crm2_deals.service import pipelines as service
from deals_kit import API, Deals, edited_after_read

STAGES = [
    {"name": "Call", "probability": 20},
    {"name": "Signed", "probability": 100, "kind": "won"},
]


async def _made(deals: Deals, headers: dict[str, str]) -> str:
    body = {"name": "Cross-sell", "stages": STAGES}
    made = await deals.client.post(f"{API}/pipelines", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return f"{API}/pipelines/{made.json()['id']}"


async def test_a_stale_if_match_is_412_and_the_pipeline_stays(deals: Deals) -> None:
    admin = await deals.user("admin")
    url = await _made(deals, admin.headers)
    edited = await deals.client.patch(
        url, json={"name": "Up-sell"}, headers={**admin.headers, "If-Match": '"v1"'}
    )
    assert edited.status_code == 200, edited.text
    stale = await deals.client.delete(url, headers={**admin.headers, "If-Match": '"v1"'})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    assert (await deals.client.get(url, headers=admin.headers)).status_code == 200
    fresh = await deals.client.delete(
        url, headers={**admin.headers, "If-Match": edited.headers["ETag"]}
    )
    assert fresh.status_code == 204, fresh.text
    assert (await deals.client.get(url, headers=admin.headers)).status_code == 404


async def test_delete_declares_its_optional_if_match_and_412(deals: Deals) -> None:
    spec = (await deals.client.get("/openapi.json")).json()
    operation = spec["paths"][f"{API}/pipelines/{{pipeline_id}}"]["delete"]
    (header,) = [p for p in operation["parameters"] if p["name"] == "If-Match"]
    assert header["in"] == "header" and header["required"] is False
    assert "412" in operation["responses"]


async def test_an_edit_committed_after_the_read_makes_a_conditional_delete_412(
    deals: Deals, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await deals.user("admin")
    url = await _made(deals, admin.headers)
    edited_after_read(monkeypatch, service, "get_pipeline", Pipeline)
    raced = await deals.client.delete(url, headers={**admin.headers, "If-Match": '"v1"'})
    assert raced.status_code == 412, raced.text
    monkeypatch.undo()
    assert (await deals.client.get(url, headers=admin.headers)).status_code == 200


async def test_a_client_edited_after_the_delete_read_it_is_412_and_stays(
    deals: Deals, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resource kit's DELETE (here a client's) is conditional in SQL too, not only
    checked against the row it read."""
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    edited_after_read(monkeypatch, clients_service.CLIENTS, "for_update", Client)
    url = f"{API}/clients/{client['id']}"
    raced = await deals.client.delete(url, headers={**admin.headers, "If-Match": '"v1"'})
    assert raced.status_code == 412, raced.text
    monkeypatch.undo()
    assert (await deals.client.get(url, headers=admin.headers)).status_code == 200
