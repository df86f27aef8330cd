"""Nothing a request caches (principal, body, request id) leaks into the next request."""

from __future__ import annotations

from crm2_core.testing import Crm2TestApp


async def test_each_request_is_authenticated_with_its_own_credentials(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    viewer = await crm2.login("viewer")

    as_admin = await crm2.client.get("/api/v1/auth/users", headers=admin)
    as_viewer = await crm2.client.get("/api/v1/auth/users", headers=viewer)
    anonymous = await crm2.client.get("/api/v1/auth/users")

    assert as_admin.status_code == 200
    assert as_viewer.status_code == 403
    assert anonymous.status_code == 401


async def test_request_id_is_not_reused_by_the_next_request(crm2: Crm2TestApp) -> None:
    await crm2.client.get("/healthz", headers={"X-Request-ID": "first"})

    response = await crm2.client.get("/api/v1/nowhere")

    assert response.headers["x-request-id"] != "first"
    assert response.json()["request_id"] == response.headers["x-request-id"]
