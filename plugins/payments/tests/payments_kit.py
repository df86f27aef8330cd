"""Shared fixtures of the payments suite: an app with the plugin, signed-in users, helpers.

Test modules import from ``payments_kit`` (never from ``conftest``).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from crm2_core.testing import Crm2TestApp, EventRecord, SignedInUser

API = "/api/v1/payments"
DEALS = "/api/v1/deals"
TASKS = "/api/v1/tasks"
User = SignedInUser


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


class Payments:
    """The app plus the helpers every payments test needs."""

    def __init__(self, app: Crm2TestApp) -> None:
        self.app = app
        self.client = app.client

    async def user(self, *roles: str) -> User:
        return await self.app.user(*roles)

    async def create(self, user: User, **fields: Any) -> dict[str, Any]:
        body = {"amount": "100.00", "currency": "EUR", **fields}
        response = await self.client.post(
            f"{API}/payments", json=body, headers={**user.headers, **key()}
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, user: User, payment_id: str) -> Any:
        return await self.client.get(f"{API}/payments/{payment_id}", headers=user.headers)

    async def move(
        self,
        user: User,
        payment_id: str,
        kind: str,
        amount: str,
        currency: str = "EUR",
        **extra: Any,
    ) -> Any:
        path = "allocations" if kind == "payment" else "refunds"
        return await self.client.post(
            f"{API}/payments/{payment_id}/{path}",
            json={"amount": amount, "currency": currency, **extra},
            headers={**user.headers, **key()},
        )

    async def role_user(self, admin: User, name: str, permissions: list[str]) -> User:
        """A user of a custom role ``name`` granting ``permissions``, made by ``admin``."""
        role = {"name": name, "permissions": permissions}
        made = await self.client.post("/api/v1/auth/roles", json=role, headers=admin.headers)
        assert made.status_code == 201, made.text
        return await self.user(name)

    async def patch(self, user: User, url: str, body: dict[str, Any]) -> Any:
        """PATCH ``url`` with the ETag it has now (200 asserted)."""
        etag = (await self.client.get(url, headers=user.headers)).headers["ETag"]
        changed = await self.client.patch(
            url, json=body, headers={**user.headers, "If-Match": etag}
        )
        assert changed.status_code == 200, changed.text
        return changed

    async def update(self, user: User, payment_id: str, **fields: Any) -> dict[str, Any]:
        """PATCH a payment with its ETag of now; the payment as answered."""
        result: dict[str, Any] = (
            await self.patch(user, f"{API}/payments/{payment_id}", fields)
        ).json()
        return result

    async def hand_over(self, admin: User, url: str, to: User) -> None:
        """Give the record at ``url`` (deals' PATCH) to ``to``."""
        await self.patch(admin, url, {"owner_id": str(to.id)})

    async def commission_rule(self, admin: User, **rule: Any) -> dict[str, Any]:
        made = await self.client.post(f"{API}/commission-rules", json=rule, headers=admin.headers)
        assert made.status_code == 201, made.text
        result: dict[str, Any] = made.json()
        return result

    async def activate(self, owner: User, policy_id: str) -> None:
        activated = await self.client.post(
            f"{DEALS}/policies/{policy_id}/activate", headers=owner.headers
        )
        assert activated.status_code == 200, activated.text

    async def events(self, type_: str | None = None) -> list[EventRecord]:
        async with self.app.context.session_factory() as session:
            stmt = select(EventRecord).order_by(EventRecord.sequence)
            if type_ is not None:
                stmt = stmt.where(EventRecord.type == type_)
            return list((await session.execute(stmt)).scalars())


@pytest.fixture
async def payments(crm2_app_factory: Any) -> Payments:
    """An app with only the core and this plugin."""
    app: Crm2TestApp = await crm2_app_factory(plugins=["payments"])
    return Payments(app)


@pytest.fixture
async def with_deals(crm2_app_factory: Any) -> Payments:
    """An app with deals and this plugin."""
    return Payments(await crm2_app_factory(plugins=["deals", "payments"]))


@pytest.fixture
async def with_tasks(crm2_app_factory: Any) -> Payments:
    """An app with tasks and this plugin."""
    return Payments(await crm2_app_factory(plugins=["tasks", "payments"]))
