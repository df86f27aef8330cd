from __future__ import annotations

from crm2_core.testing import Crm2TestApp


async def test_login_then_me(crm2: Crm2TestApp) -> None:
    headers = await crm2.login("agent")
    response = await crm2.client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["agent"]
