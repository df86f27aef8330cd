"""A query parameter that takes one value, sent twice, is a 400 naming it.

Starlette keeps every value and FastAPI reads the last: ``?owner=me&owner=you`` could be
checked by a proxy, a WAF or a cache as one thing and served as another (HTTP parameter
pollution), as a JSON key sent twice would (``test_duplicate_json_keys.py``).
"""

from __future__ import annotations

import pytest

from crm2_core.testing import Crm2TestApp

USERS = "/api/v1/auth/users"


async def test_a_single_valued_parameter_sent_twice_is_400_naming_it(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    response = await crm2.client.get(f"{USERS}?limit=1&limit=200", headers=admin)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:crm2:problem:repeated-query-parameter"
    assert body["parameters"] == ["limit"]
    assert "limit" in body["detail"]
    assert (await crm2.client.get(f"{USERS}?limit=1", headers=admin)).status_code == 200


@pytest.mark.crm2_plugins("deals")
async def test_a_repeatable_filter_may_be_sent_twice(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    path = "/api/v1/deals/policies"
    listed = await crm2.client.get(f"{path}?status=active&status=draft", headers=admin)
    assert listed.status_code == 200, listed.text
    twice = await crm2.client.get(f"{path}?status=active&q=a&q=b", headers=admin)
    assert twice.status_code == 400, twice.text
    assert twice.json()["parameters"] == ["q"]
