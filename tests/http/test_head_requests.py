"""HEAD is answered wherever GET is (RFC 9110 §9.1: a server MUST support both).

A load balancer's or uptime monitor's ``HEAD /healthz`` and ``curl -I`` on a record
got a 405 with ``Allow: GET``. HEAD gets the GET's status and headers, no body.
"""

from __future__ import annotations

import asyncio

from crm2_core.testing import Crm2TestApp

USERS = "/api/v1/auth/users"


async def test_head_of_a_health_check_is_its_get_without_the_body(crm2: Crm2TestApp) -> None:
    get = await crm2.client.get("/healthz")
    head = await crm2.client.head("/healthz")
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_head_of_a_record_carries_its_etag(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    get = await crm2.client.get("/api/v1/auth/me", headers=admin)
    head = await crm2.client.head("/api/v1/auth/me", headers=admin)
    assert head.status_code == 200 and head.content == b""
    assert head.headers.get("etag") == get.headers.get("etag")
    assert head.headers["x-request-id"] != get.headers["x-request-id"]


async def test_head_of_a_list_is_authorised_as_its_get(crm2: Crm2TestApp) -> None:
    assert (await crm2.client.head(USERS)).status_code == 401
    viewer = await crm2.login("viewer")
    assert (await crm2.client.head(USERS, headers=viewer)).status_code == 403
    admin = await crm2.login("admin")
    head = await crm2.client.head(f"{USERS}?limit=1", headers=admin)
    assert head.status_code == 200 and head.content == b""
    bad = await crm2.client.head(f"{USERS}?limit=0", headers=admin)
    assert bad.status_code == 422 and bad.content == b""


async def test_head_where_get_is_not_allowed_is_405_naming_the_methods(crm2: Crm2TestApp) -> None:
    response = await crm2.client.head("/api/v1/auth/login")
    assert response.status_code == 405 and response.content == b""
    assert response.headers["allow"] == "POST"
    assert (await crm2.client.head("/api/v1/nowhere")).status_code == 404


async def test_head_changes_nothing_and_options_stays_405(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    before = (await crm2.client.get(USERS, headers=admin)).json()
    await asyncio.gather(*(crm2.client.head(USERS, headers=admin) for _ in range(3)))
    assert (await crm2.client.get(USERS, headers=admin)).json() == before
    options = await crm2.client.options(USERS, headers=admin)
    assert options.status_code == 405 and "GET" in options.headers["allow"]
