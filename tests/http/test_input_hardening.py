"""Issue 9 (items 5, 9, 10) in the core: input no route can store or parse is a clear 4xx.

Runs on both databases; on PostgreSQL a NUL once reached the driver (500).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.pytest_plugin import AppFactory

LOGIN = "/api/v1/auth/login"
USERS = "/api/v1/auth/users"


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:crm2:problem:{slug}"
    assert body["instance"] == response.request.url.path
    return body


async def test_nul_in_the_login_email_is_422_naming_the_field(crm2: Crm2TestApp) -> None:
    response = await crm2.client.post(
        LOGIN, json={"email": "admin\u0000@example.com", "password": "whatever"}
    )
    body = problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "email"]
    assert "NUL" in body["errors"][0]["msg"]


async def test_nul_in_a_list_item_is_422_naming_the_field(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    user = {"email": "n@example.com", "password": "long enough pw", "roles": ["vi\u0000ewer"]}
    response = await crm2.client.post(USERS, json=user, headers=admin)
    assert problem(response, 422, "validation-error")["errors"][0]["loc"] == ["body", "roles"]


async def test_nul_in_a_path_value_is_422(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    response = await crm2.client.get("/api/v1/auth/roles/ad%00min", headers=admin)
    assert problem(response, 422, "validation-error")["errors"][0]["loc"] == ["path", "name"]


async def test_unknown_query_parameter_on_a_core_route_is_400(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    response = await crm2.client.get(f"{USERS}?limit=5&lmit=5", headers=admin)
    body = problem(response, 400, "unknown-query-parameter")
    assert body["parameters"] == ["lmit"] and "limit" in body["detail"]
    assert (await crm2.client.get(f"{USERS}?limit=5", headers=admin)).status_code == 200


async def test_malformed_json_is_400_with_line_and_column(crm2: Crm2TestApp) -> None:
    response = await crm2.client.post(
        LOGIN,
        content=b'{\n  "email": "a@example.com",\n  "password": oops\n}',
        headers={"content-type": "application/json"},
    )
    body = problem(response, 400, "malformed-json")
    assert (body["line"], body["column"]) == (3, 15)
    assert "line 3 column 15" in body["detail"]


async def test_a_form_body_where_json_is_read_is_415(crm2: Crm2TestApp) -> None:
    response = await crm2.client.post(
        LOGIN, data={"email": "a@example.com", "password": "x"}
    )  # application/x-www-form-urlencoded
    problem(response, 415, "unsupported-media-type")


async def test_middleware_problems_carry_instance(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(max_body_bytes=2048)
    too_large = await crm2.client.post(
        LOGIN, content=b"x" * 4000, headers={"content-type": "application/json"}
    )
    problem(too_large, 413, "payload-too-large")
    wrong_type = await crm2.client.post(
        LOGIN, content=b"email", headers={"content-type": "text/plain"}
    )
    problem(wrong_type, 415, "unsupported-media-type")
    admin = await crm2.login("admin")
    bad_key = await crm2.client.post(
        USERS, json={}, headers={**admin, "Idempotency-Key": "x" * 256}
    )
    problem(bad_key, 400, "bad-request")


def test_a_content_length_only_counts_when_it_is_ascii_digits() -> None:
    """uvicorn refuses such headers before us; the middleware must not raise on them either
    ("²" passes str.isdigit(), int() refuses it and any number past 4,300 digits)."""
    from crm2_core.http.middleware import _declared_above

    assert _declared_above("2049", 2048) and not _declared_above("2048", 2048)
    assert _declared_above("9" * 5000, 2048)
    assert not _declared_above("\u00b2", 2048) and not _declared_above(None, 2048)


async def test_json_in_another_charset_is_415_and_changes_nothing(crm2: Crm2TestApp) -> None:
    """RFC 8259: JSON is UTF-8. A body declared latin-1 was read as UTF-8 anyway, and its
    bytes met FastAPI's generic 400 "There was an error parsing the body"."""
    admin = await crm2.login("admin")
    user = {"email": "élise@example.com", "password": "long enough pw", "roles": ["viewer"]}
    for charset in ("latin-1", "ISO-8859-1", '"utf-16"'):
        headers = {**admin, "Content-Type": f"application/json; charset={charset}"}
        encoded = json.dumps(user, ensure_ascii=False).encode("latin-1")
        body = problem(
            await crm2.client.post(USERS, content=encoded, headers=headers),
            415,
            "unsupported-charset",
        )
        assert body["charset"] == charset.strip('"').lower()
        assert "UTF-8" in body["detail"]
    for charset in ("utf-8", "UTF8", '"UTF-8"'):
        headers = {**admin, "Content-Type": f"application/json;charset={charset}"}
        made = await crm2.client.post(
            USERS, content=json.dumps({**user, "email": f"u{len(charset)}@x.org"}), headers=headers
        )
        assert made.status_code == 201, made.text
    listed = (await crm2.client.get(USERS, params={"limit": 100}, headers=admin)).json()
    assert not [u for u in listed["items"] if u["email"].startswith("élise")]


async def test_json_bytes_that_are_not_utf8_are_a_400_naming_the_byte(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    headers = {**admin, "Content-Type": "application/json"}
    user = {"email": "élise@example.com", "password": "long enough pw", "roles": ["viewer"]}
    text = json.dumps(user, ensure_ascii=False)
    latin = problem(
        await crm2.client.post(USERS, content=text.encode("latin-1"), headers=headers),
        400,
        "not-utf8",
    )
    assert "0xE9 at offset 11" in latin["detail"]
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        response = await crm2.client.post(USERS, content=text.encode(encoding), headers=headers)
        problem(response, 400, "not-utf8")
    bom = await crm2.client.post(USERS, content=text.encode("utf-8-sig"), headers=headers)
    assert bom.status_code == 201, bom.text  # RFC 8259: a parser may ignore a UTF-8 BOM


async def test_json_nested_past_what_the_parser_reads_is_a_400_saying_so(
    crm2: Crm2TestApp,
) -> None:
    """json.loads raised RecursionError: FastAPI's generic 400 "error parsing the body"."""
    admin = await crm2.login("admin")
    headers = {**admin, "Content-Type": "application/json"}
    for body in (b"[" * 100_000, b'{"a":' * 50_000, b"[" * 5_000 + b"]" * 5_000):
        response = await crm2.client.post(USERS, content=body, headers=headers)
        assert (
            "nests arrays or objects too deeply"
            in problem(response, 400, "json-too-deep")["detail"]
        )
    response = await crm2.client.post(LOGIN, content=b"[" * 100_000, headers=headers)
    problem(response, 400, "json-too-deep")
    nested = json.dumps({"email": "a@b.org", "password": "x", "roles": [[[["viewer"]]]]})
    flat = await crm2.client.post(USERS, content=nested, headers=headers)
    assert flat.status_code == 422, flat.text  # deep enough to read: judged as usual
