"""Issue 9 item 11: the OpenAPI document says what the core does to every route."""

from __future__ import annotations

from typing import Any

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.pytest_plugin import AppFactory

PROBLEM = "application/problem+json"


async def _document(crm2: Crm2TestApp) -> dict[str, Any]:
    response = await crm2.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_security_schemes_and_each_operations_security(crm2: Crm2TestApp) -> None:
    document = await _document(crm2)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = document["paths"]
    assert paths["/api/v1/auth/users"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/api/v1/auth/login"]["post"]  # public
    stream = paths["/api/v1/streams/{channel}"]["get"]
    assert stream["security"] == [{"bearer": []}, {"streamToken": []}]


async def test_if_match_and_idempotency_key_are_declared(crm2: Crm2TestApp) -> None:
    paths = (await _document(crm2))["paths"]
    patch = paths["/api/v1/auth/users/{user_id}"]["patch"]
    if_match = [p for p in patch["parameters"] if p["name"] == "If-Match"]
    assert if_match and if_match[0]["required"] is True and if_match[0]["in"] == "header"
    assert {"412", "428"} <= set(patch["responses"])
    create = paths["/api/v1/auth/users"]["post"]
    key = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
    assert key and key[0]["required"] is False


async def test_every_error_is_documented_as_problem_json(crm2: Crm2TestApp) -> None:
    document = await _document(crm2)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, op in item.items():
            errors = {s: r for s, r in op["responses"].items() if s.startswith(("4", "5"))}
            never = {"/api/v1/auth/logout": {"404"}}.get(path, set())
            assert {"400", "404", "422", "429"} - never <= set(errors), (method, path)
            for status, response in errors.items():
                assert list(response["content"]) == [PROBLEM], (method, path, status)
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "401" in login and {"413", "415"} <= set(login)


async def test_logout_declares_exactly_what_it_answers(crm2: Crm2TestApp) -> None:
    """204 whatever the token: no record to miss (404), nothing to conflict with (409)."""
    logout = (await _document(crm2))["paths"]["/api/v1/auth/logout"]["post"]
    assert set(logout["responses"]) == {"204", "400", "413", "415", "422", "429"}
    assert not [k for k in logout if k.startswith("x-crm2")]
    for token in ("never issued", ""):
        response = await crm2.client.post("/api/v1/auth/logout", json={"refresh_token": token})
        assert response.status_code in (204, 422), response.text


async def test_405_allow_lists_every_method_of_the_path(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    me = (await crm2.client.get("/api/v1/auth/me", headers=admin)).json()
    response = await crm2.client.request("OPTIONS", f"/api/v1/auth/users/{me['id']}", headers=admin)
    assert response.status_code == 405
    document = await _document(crm2)
    declared = {m.upper() for m in document["paths"]["/api/v1/auth/users/{user_id}"]}
    assert set(response.headers["allow"].split(", ")) == declared


async def test_money_is_a_string_only_and_integers_are_bounded(
    crm2_app_factory: AppFactory,
) -> None:
    crm2 = await crm2_app_factory(plugins=["deals"])
    document = await _document(crm2)
    schemas = document["components"]["schemas"]

    def money_fields(schema: Any) -> list[Any]:
        found = []
        if isinstance(schema, dict):
            if schema.get("pattern", "").startswith("^-?[0-9]{1,15}"):
                found.append(schema)
            for value in schema.values():
                found += money_fields(value)
        elif isinstance(schema, list):
            for value in schema:
                found += money_fields(value)
        return found

    money = money_fields(schemas)
    assert len(money) >= 5
    assert all(m["type"] == "string" for m in money)
    stage = schemas["StageIn"]["properties"]["probability"]
    assert (stage["minimum"], stage["maximum"]) == (0, 100)


async def test_reassign_answers_only_what_it_declares(crm2: Crm2TestApp) -> None:
    """/reassign's 403, 404 and 422 happen, are declared, and are problem+json (the kit's
    recorder then finds nothing undeclared at teardown)."""
    document = await _document(crm2)
    declared = document["paths"]["/api/v1/auth/users/{user_id}/reassign"]["post"]["responses"]
    for status in ("401", "403", "404", "409", "422"):
        assert list(declared[status]["content"]) == [PROBLEM], status
    admin = await crm2.login("admin")
    agent = await crm2.login("agent")
    me = (await crm2.client.get("/api/v1/auth/me", headers=admin)).json()["id"]
    url = "/api/v1/auth/users/{}/reassign"
    unknown = "00000000-0000-4000-8000-000000000000"
    for headers, user, body, status in [
        (agent, me, {"to": me}, 403),
        (admin, unknown, {"to": me}, 404),
        (admin, me, {"to": unknown}, 422),
        (admin, me, {"to": me}, 422),
    ]:
        response = await crm2.client.post(url.format(user), json=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
    recorded = crm2.app.state.crm2_answered_problems
    path = "/api/v1/auth/users/{user_id}/reassign"
    assert {("POST", path, s) for s in (403, 404, 422)} <= recorded
    assert crm2.undeclared_problems() == []


async def test_the_kit_catches_a_status_a_route_does_not_declare(
    crm2_app_factory: AppFactory,
) -> None:
    """Every test app records the problems it answered; one that its route's operation does
    not declare is reported (the ``crm2_app_factory`` fixture fails the test at teardown)."""
    crm2 = await crm2_app_factory()
    admin = await crm2.login("admin")
    response = await crm2.client.get("/api/v1/auth/me", headers=admin)
    assert response.status_code == 200
    # /auth/me is a GET: a 409 from it would be undeclared; simulate the recorder's entry
    answered = crm2.app.state.crm2_answered_problems
    answered.add(("GET", "/api/v1/auth/me", 409))
    assert crm2.undeclared_problems() == [("GET", "/api/v1/auth/me", 409)]
    answered.clear()
    assert crm2.undeclared_problems() == []
