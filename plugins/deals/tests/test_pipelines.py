"""Pipelines with ordered stages, and the managed list of lost reasons."""

from __future__ import annotations

from typing import Any

from deals_kit import API, Deals

STAGES = [
    {"name": "Call", "probability": 20},
    {"name": "Offer", "probability": 60},
    {"name": "Signed", "probability": 100, "kind": "won"},
    {"name": "Dropped", "probability": 0, "kind": "lost"},
]


async def _create(deals: Deals, headers: dict[str, str], **fields: Any) -> Any:
    body = {"name": "Cross-sell", "stages": STAGES, **fields}
    response = await deals.client.post(f"{API}/pipelines", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_default_pipelines_listed_default_first_with_ordered_stages(deals: Deals) -> None:
    viewer = await deals.user("viewer")
    response = await deals.client.get(f"{API}/pipelines", headers=viewer.headers)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [p["name"] for p in items] == ["New business", "Renewals"]
    assert items[0]["is_default"] is True
    stages = items[0]["stages"]
    assert [s["position"] for s in stages] == sorted(s["position"] for s in stages)
    assert set(stages[0]) >= {"id", "name", "probability", "kind", "position"}
    assert [s["kind"] for s in stages][-2:] == ["won", "lost"]


async def test_create_and_get_pipeline_needs_deals_admin(deals: Deals) -> None:
    admin, manager = await deals.user("admin"), await deals.user("manager")
    body = {"name": "Nope", "stages": STAGES}
    forbidden = await deals.client.post(f"{API}/pipelines", json=body, headers=manager.headers)
    assert forbidden.status_code == 403
    created = await _create(deals, admin.headers)
    assert [(s["name"], s["position"]) for s in created["stages"]] == [
        ("Call", 0),
        ("Offer", 1),
        ("Signed", 2),
        ("Dropped", 3),
    ]
    got = await deals.client.get(f"{API}/pipelines/{created['id']}", headers=manager.headers)
    assert got.status_code == 200 and got.headers["etag"] == '"v1"'


async def test_invalid_stage_lists_are_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    for stages in (
        [{"name": "A", "probability": 101}],
        [{"name": "A", "probability": 100, "kind": "won"}],
        [
            {"name": "A", "probability": 1, "position": 1},
            {"name": "B", "probability": 1, "position": 1},
        ],
        [{"name": "A", "probability": 1, "kind": "maybe"}],
    ):
        body = {"name": "Bad", "stages": stages}
        response = await deals.client.post(f"{API}/pipelines", json=body, headers=admin.headers)
        assert response.status_code == 422, stages


async def test_two_stages_of_one_name_in_a_pipeline_are_422(deals: Deals) -> None:
    """A pipeline took two stages named alike ("Offer" and "OFFER"): its board showed
    two columns no one could tell apart, as did a deal's stage in its history and export."""
    admin = await deals.user("admin")
    twins = [*STAGES, {"name": "OFFER", "probability": 70}]
    made = await deals.client.post(
        f"{API}/pipelines", json={"name": "Twins", "stages": twins}, headers=admin.headers
    )
    assert made.status_code == 422, made.text
    assert made.headers["content-type"].startswith("application/problem+json")
    assert "'OFFER'" in made.json()["detail"], made.text
    pipeline = await _create(deals, admin.headers)
    renamed = [*pipeline["stages"][:-1], {**pipeline["stages"][-1], "name": "CALL"}]
    changed = await deals.client.patch(
        f"{API}/pipelines/{pipeline['id']}", json={"stages": renamed},
        headers={**admin.headers, "If-Match": f'"v{pipeline["version"]}"'},
    )  # fmt: skip
    assert changed.status_code == 422, changed.text
    # one stage renamed to another's old name, that one renamed too: fine
    call, offer = pipeline["stages"][:2]
    swapped = [{**call, "name": "Offer"}, {**offer, "name": "Call"}, *pipeline["stages"][2:]]
    fine = await deals.client.patch(
        f"{API}/pipelines/{pipeline['id']}", json={"stages": swapped},
        headers={**admin.headers, "If-Match": f'"v{pipeline["version"]}"'},
    )  # fmt: skip
    assert fine.status_code == 200, fine.text


async def test_update_reorders_adds_and_removes_stages(deals: Deals) -> None:
    admin = await deals.user("admin")
    pipeline = await _create(deals, admin.headers)
    call, offer, signed, dropped = pipeline["stages"]
    url = f"{API}/pipelines/{pipeline['id']}"
    new_stages = [
        {**offer, "position": 0},
        {**call, "name": "First call", "position": 1},
        {"name": "Demo", "probability": 40},
        {**signed, "position": 3},
    ]
    assert (
        await deals.client.patch(url, json={"name": "X"}, headers=admin.headers)
    ).status_code == 428
    response = await deals.client.patch(
        url,
        json={"name": "Upsell", "stages": new_stages},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Upsell" and response.headers["etag"] == '"v2"'
    assert [(s["name"], s["position"]) for s in body["stages"]] == [
        ("Offer", 0),
        ("First call", 1),
        ("Demo", 2),
        ("Signed", 3),
    ]
    assert body["stages"][0]["id"] == offer["id"]
    assert dropped["id"] not in {s["id"] for s in body["stages"]}
    stale = await deals.client.patch(
        url, json={"name": "Y"}, headers={**admin.headers, "If-Match": '"v1"'}
    )
    assert stale.status_code == 412


async def test_stage_holding_deals_cannot_be_removed_or_retyped(deals: Deals) -> None:
    admin = await deals.user("admin")
    pipeline = await _create(deals, admin.headers)
    call, offer, signed, dropped = pipeline["stages"]
    client = await deals.create_client(admin.headers)
    await deals.create_deal(
        admin.headers, client["id"], pipeline_id=pipeline["id"], stage_id=offer["id"]
    )
    url, headers = f"{API}/pipelines/{pipeline['id']}", {**admin.headers, "If-Match": '"v1"'}
    removed = await deals.client.patch(
        url, json={"stages": [call, signed, dropped]}, headers=headers
    )
    assert removed.status_code == 409
    retyped = await deals.client.patch(
        url, json={"stages": [call, {**offer, "kind": "won"}, signed, dropped]}, headers=headers
    )
    assert retyped.status_code == 409
    foreign = (await deals.pipeline(admin.headers))["stages"][0]
    stranger = await deals.client.patch(
        url, json={"stages": [call, offer, signed, dropped, foreign]}, headers=headers
    )
    assert stranger.status_code == 422
    gone = await deals.client.delete(url, headers=admin.headers)
    assert gone.status_code == 409


async def test_one_default_pipeline_and_delete_rules(deals: Deals) -> None:
    admin = await deals.user("admin")
    old_default = await deals.pipeline(admin.headers)
    new = await _create(deals, admin.headers, is_default=True)
    items = (await deals.client.get(f"{API}/pipelines", headers=admin.headers)).json()["items"]
    assert [p["name"] for p in items if p["is_default"]] == ["Cross-sell"]
    refused = await deals.client.delete(f"{API}/pipelines/{new['id']}", headers=admin.headers)
    assert refused.status_code == 409
    deleted = await deals.client.delete(
        f"{API}/pipelines/{old_default['id']}", headers=admin.headers
    )
    assert deleted.status_code == 204
    missing = await deals.client.get(f"{API}/pipelines/{old_default['id']}", headers=admin.headers)
    assert missing.status_code == 404


async def test_lost_reasons_list_and_create(deals: Deals) -> None:
    admin, manager = await deals.user("admin"), await deals.user("manager")
    listed = await deals.client.get(f"{API}/lost-reasons", headers=manager.headers)
    names = [r["name"] for r in listed.json()["items"]]
    assert "Price" in names and names == sorted(names)
    body = {"name": "Budget cut"}
    forbidden = await deals.client.post(f"{API}/lost-reasons", json=body, headers=manager.headers)
    assert forbidden.status_code == 403
    created = await deals.client.post(f"{API}/lost-reasons", json=body, headers=admin.headers)
    assert created.status_code == 201 and created.json()["active"] is True
    again = await deals.client.post(
        f"{API}/lost-reasons", json={"name": "budget CUT"}, headers=admin.headers
    )
    assert again.status_code == 409


async def test_the_default_pipeline_is_moved_never_unset(deals: Deals) -> None:
    """Unsetting the only default left none: deals created without a pipeline had
    nowhere to go. The default moves by making another pipeline the default."""
    admin = await deals.user("admin")
    listed = (await deals.client.get(f"{API}/pipelines", headers=admin.headers)).json()
    default = next(p for p in listed["items"] if p["is_default"])
    path = f"{API}/pipelines/{default['id']}"
    etag = (await deals.client.get(path, headers=admin.headers)).headers["etag"]
    unset = await deals.client.patch(
        path, json={"is_default": False}, headers={**admin.headers, "If-Match": etag}
    )
    assert unset.status_code == 409, unset.text
    assert "make another one the default" in unset.json()["detail"]
    assert (await deals.client.get(path, headers=admin.headers)).json()["is_default"] is True
    other = await _create(deals, admin.headers, is_default=True)
    assert (await deals.client.get(path, headers=admin.headers)).json()["is_default"] is False
    assert other["is_default"] is True


async def test_names_differing_in_the_case_of_an_accented_letter_collide(deals: Deals) -> None:
    """The uniqueness checks folded ASCII only on SQLite: "élan" passed beside "Élan"."""
    admin = await deals.user("admin")
    first = await _create(deals, admin.headers, name="Élan")
    pipelines = f"{API}/pipelines"
    body = {"name": "éLAN", "stages": STAGES}
    twin = await deals.client.post(pipelines, json=body, headers=admin.headers)
    other = await _create(deals, admin.headers, name="Straße")
    etag = (await deals.client.get(f"{pipelines}/{other['id']}", headers=admin.headers)).headers
    headers = {**admin.headers, "If-Match": etag["etag"]}
    renamed = await deals.client.patch(
        f"{pipelines}/{other['id']}", json={"name": "élan"}, headers=headers
    )
    same = await deals.client.post(
        pipelines, json={"name": "Straße", "stages": STAGES}, headers=admin.headers
    )
    reasons = f"{API}/lost-reasons"
    made = await deals.client.post(reasons, json={"name": "Échec"}, headers=admin.headers)
    again = await deals.client.post(reasons, json={"name": "échec"}, headers=admin.headers)

    for refused in (twin, renamed, same, again):
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert made.status_code == 201, made.text
    assert "Élan" in twin.json()["detail"]
    listed = (await deals.client.get(pipelines, headers=admin.headers)).json()["items"]
    assert sorted(p["name"] for p in listed if p["id"] in (first["id"], other["id"])) == [
        "Straße",
        "Élan",
    ]
