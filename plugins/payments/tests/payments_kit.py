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
