"""Issue 9 (items 5, 6, 9) on the deals plugin: what once reached the database and gave 500.

Every test runs on PostgreSQL too (``--crm2-db sqlite,postgresql``), where NUL and
out-of-range integers used to fail in the driver.
"""

from __future__ import annotations

from typing import Any

from deals_kit import API, Deals


def _loc(response: Any) -> list[Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    loc: list[Any] = response.json()["errors"][0]["loc"]
    return loc


async def test_nul_in_a_name_or_tag_is_422_naming_the_field(deals: Deals) -> None:
    admin = await deals.user("admin")
    url = f"{API}/clients"
    name = await deals.client.post(
        url, json={"kind": "person", "name": "A\u0000B"}, headers=admin.headers
    )
    assert _loc(name) == ["body", "name"]
    tag = await deals.client.post(
        url, json={"kind": "person", "name": "A", "tags": ["ok", "b\u0000d"]}, headers=admin.headers
    )
    assert _loc(tag) == ["body", "tags"]
    assert "[1]" in tag.json()["errors"][0]["msg"]
    surrogate = await deals.client.post(
        url,
        content=b'{"kind": "person", "name": "x\\ud800y"}',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert _loc(surrogate) == ["body", "name"]
    # Nothing was stored, so ?tag= keeps working for everyone.
    listed = await deals.client.get(f"{url}?tag=ok", headers=admin.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_nul_in_a_query_or_path_value_is_422_naming_the_parameter(deals: Deals) -> None:
    admin = await deals.user("admin")
    query = await deals.client.get(f"{API}/clients?q=a%00b", headers=admin.headers)
    assert _loc(query) == ["query", "q"]
    tag = await deals.client.get(f"{API}/clients?tag=x%00", headers=admin.headers)
    assert _loc(tag) == ["query", "tag"]
    path = await deals.client.get(f"{API}/clients/a%00b", headers=admin.headers)
    assert _loc(path) == ["path", "client_id"]


async def test_nul_in_a_csv_cell_is_422_naming_row_and_column(deals: Deals) -> None:
    admin = await deals.user("admin")
    content = "name,tags,owner_email\nGood,,\nBad,vip\u0000,\n".encode()
    response = await deals.client.post(
        f"{API}/clients/import",
        files={"file": ("c.csv", content, "text/csv")},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
    assert "row 3, column tags" in response.json()["detail"]


async def test_stage_position_beyond_int32_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    stages: list[dict[str, Any]] = [{"name": "Open", "probability": 10, "position": 2**31}]
    body = {"name": "Huge", "stages": stages}
    response = await deals.client.post(f"{API}/pipelines", json=body, headers=admin.headers)
    assert _loc(response)[:2] == ["body", "stages"]
    stages[0]["position"] = 2**31 - 1  # the column's own maximum is fine
    ok = await deals.client.post(f"{API}/pipelines", json=body, headers=admin.headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["stages"][0]["position"] == 2**31 - 1


async def test_an_integer_beyond_64_bits_anywhere_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    stages = [{"name": "Open", "probability": 10, "position": 2**70}]
    body = {"name": "Huge", "stages": stages}
    response = await deals.client.post(f"{API}/pipelines", json=body, headers=admin.headers)
    assert _loc(response)[:2] == ["body", "stages"]


async def test_unknown_query_parameter_is_400_naming_it(deals: Deals) -> None:
    admin = await deals.user("admin")
    response = await deals.client.get(f"{API}/deals?stauts=won", headers=admin.headers)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"].endswith("unknown-query-parameter")
    assert problem["parameters"] == ["stauts"]
    assert "stauts" in problem["detail"] and "status" in problem["detail"]
    # Declared ones, a dependency's included (limit, cursor, the filters), still work.
    fine = await deals.client.get(f"{API}/deals?status=won&limit=5", headers=admin.headers)
    assert fine.status_code == 200, fine.text


async def test_patch_null_on_a_required_field_is_422_and_clearable_fields_clear(
    deals: Deals,
) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers, tax_id="DE123")
    url = f"{API}/clients/{client['id']}"
    headers = {**admin.headers, "If-Match": '"v1"'}
    refused = await deals.client.patch(url, json={"name": None}, headers=headers)
    assert _loc(refused) == ["body", "name"]
    cleared = await deals.client.patch(url, json={"tax_id": None}, headers=headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["tax_id"] is None and cleared.json()["name"] == client["name"]
    deal = await deals.create_deal(admin.headers, client["id"])
    deal_url = f"{API}/deals/{deal['id']}"
    for field in ("title", "value", "currency", "owner_id"):
        response = await deals.client.patch(deal_url, json={field: None}, headers=headers)
        assert _loc(response) == ["body", field]


async def test_the_openapi_document_shows_null_only_where_it_is_taken(deals: Deals) -> None:
    document = (await deals.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    client_update = schemas["ClientUpdate"]["properties"]
    assert client_update["name"]["type"] == "string" and "anyOf" not in client_update["name"]
    assert {"type": "null"} in client_update["tax_id"]["anyOf"]
    value = schemas["DealCreate"]["properties"]["value"]
    assert {"type": "number"} not in value.get("anyOf", [value])
    assert all(b.get("type") in ("string", "null") for b in value.get("anyOf", [value]))
    position = schemas["StageIn"]["properties"]["position"]
    (integer,) = [b for b in position["anyOf"] if b.get("type") == "integer"]
    assert (integer["minimum"], integer["maximum"]) == (0, 2**31 - 1)


async def test_a_range_given_backwards_is_422_naming_both_ends(deals: Deals) -> None:
    """``end_after`` later than ``end_before`` (policies) and ``value_min`` over
    ``value_max`` (deals) answered 200 and an empty list, unlike ``expected_close_from``
    later than ``expected_close_to``: the swapped pair is the client's mistake."""
    admin = await deals.user("admin")
    for path, backwards in (
        ("policies", {"end_after": "2026-02-01", "end_before": "2026-01-01"}),
        ("deals", {"value_min": "10", "value_max": "9.5", "currency": "EUR"}),
        ("deals", {"expected_close_from": "2026-02-01", "expected_close_to": "2026-01-01"}),
    ):
        for listed in (path, f"{path}/export") if path == "deals" else (path,):
            answer = await deals.client.get(
                f"{API}/{listed}", params=backwards, headers=admin.headers
            )
            low = next(iter(backwards))
            assert _loc(answer) == ["query", low], (listed, answer.text)
            detail = answer.json()["detail"]
            assert all(name in detail for name in list(backwards)[:2]), detail
    for path, fine in (
        ("policies", {"end_after": "2026-01-01", "end_before": "2026-01-01"}),
        ("deals", {"value_min": "9", "value_max": "10", "currency": "EUR"}),
    ):
        ok = await deals.client.get(f"{API}/{path}", params=fine, headers=admin.headers)
        assert ok.status_code == 200, ok.text
