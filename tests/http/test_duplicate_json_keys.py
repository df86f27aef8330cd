"""A JSON body naming a key twice is a 422 naming it, and changes nothing.

Python's parser keeps the last value; a proxy or WAF in front may have read the first
(``{"amount": 1, "amount": 1000}``): crm2 refuses to guess which one the client meant.
"""

from __future__ import annotations

import json

import pytest

from crm2_core.http.json_keys import JsonDefect, json_defect
from crm2_core.testing import Crm2TestApp

USERS = "/api/v1/auth/users"
JSON = {"Content-Type": "application/json"}


def _problem(response: object, key: str) -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == "urn:crm2:problem:duplicate-json-key"
    assert body["key"] == key
    assert repr(key) in body["detail"] or json.dumps(key) in body["detail"]


async def test_a_repeated_key_is_422_naming_it_and_nothing_is_created(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    body = (
        b'{"email": "first@example.com", "password": "long enough pw",'
        b' "email": "second@example.com", "roles": ["viewer"]}'
    )
    response = await crm2.client.post(USERS, content=body, headers={**admin, **JSON})
    _problem(response, "email")
    listed = await crm2.client.get(USERS, headers=admin)
    emails = {user["email"] for user in listed.json()["items"]}
    assert not emails & {"first@example.com", "second@example.com"}


async def test_a_repeated_key_in_a_nested_object_is_422(crm2: Crm2TestApp) -> None:
    response = await crm2.client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@example.com", "password": "x", "extra": {"n": 1, "n": 2}}',
        headers=JSON,
    )
    _problem(response, "n")


async def test_a_repeated_key_is_refused_before_its_idempotency_key_is_claimed(
    crm2: Crm2TestApp,
) -> None:
    admin = await crm2.login("admin")
    headers = {**admin, **JSON, "Idempotency-Key": "dup-1"}
    twice = b'{"email": "i@example.com", "email": "i@example.com", "password": "long enough pw"}'
    _problem(await crm2.client.post(USERS, content=twice, headers=headers), "email")
    once = b'{"email": "i@example.com", "password": "long enough pw"}'
    created = await crm2.client.post(USERS, content=once, headers=headers)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("document", "key"),
    [
        (b'{"amount": 1, "amount": 1000}', "amount"),
        (b'{"a": {"b": [{"c": 1, "d": 2, "c": 3}]}}', "c"),
        (b'{"a": 1, "\\u0061": 2}', "a"),  # the same key, escaped
        (b'{"t": "12:00", "u": "x\\":", "t": 1}', "t"),  # colons and quotes in values
        (b'{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}', None),
        (b'{"t": "12:00", "u": "x\\":y", "v": "\\\\"}', None),
        (b'{"a" : 1 ,\n "b"\t:\r\n2}', None),
        (b"[1, 2, 3]", None),
        (b'"plain"', None),
        (b'{"a": 1, "a": ', None),  # not JSON: FastAPI's own 400 says where
        (b"\xff\xfe", None),
    ],
)
def test_duplicate_key_finds_exactly_the_repeated_keys(document: bytes, key: str | None) -> None:
    found = json_defect(document)
    assert found == (None if key is None else JsonDefect("repeated-key", key))


def test_deep_nesting_is_no_crash() -> None:
    """Past what ``json`` parses it says so (the middleware's 400 json-too-deep)."""
    with pytest.raises(RecursionError):
        json_defect(b"[" * 5000 + b"]" * 5000)
    assert json_defect(b'{"a":' * 900 + b"1" + b"}" * 900) is None


@pytest.mark.parametrize(
    ("document", "token"),
    [
        (b'{"a": NaN}', "NaN"),
        (b'{"a": [1, -Infinity]}', "-Infinity"),
        (b'{"a": {"b": Infinity}}', "Infinity"),
        (b'{"a": 1e400}', "1e400"),
        (b'{"a": -2.5E+309}', "-2.5E+309"),
        (b'{"a": NaN, "a": 1}', "NaN"),  # the value is read before its object is built
        (b'{"a": 1.7976931348623157e308, "b": 1e-400, "c": 12345678901234567890}', None),
    ],
)
def test_non_finite_numbers_are_found(document: bytes, token: str | None) -> None:
    found = json_defect(document)
    assert found == (None if token is None else JsonDefect("non-finite-number", token))


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_a_non_finite_number_is_400_naming_it_and_nothing_is_created(
    crm2: Crm2TestApp, number: bytes
) -> None:
    """Python reads them (``float('nan')``, ``inf``); PostgreSQL's JSON refuses them (a 500)."""
    admin = await crm2.login("admin")
    body = b'{"email": "nan@example.com", "password": "long enough pw", "x": %s}' % number
    response = await crm2.client.post(USERS, content=body, headers={**admin, **JSON})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:crm2:problem:non-finite-number"
    assert problem["number"] == number.decode()
    assert number.decode() in problem["detail"]
    listed = await crm2.client.get(USERS, headers=admin)
    assert "nan@example.com" not in {user["email"] for user in listed.json()["items"]}
