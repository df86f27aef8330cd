"""The first admin that `crm2 serve` creates."""

from __future__ import annotations

from rich.console import Console

from crm2_core.auth import repository as repo
from crm2_core.cli.bootstrap import ensure_first_admin
from crm2_core.testing import Crm2TestApp


async def _admins(crm2: Crm2TestApp) -> int:
    async with crm2.context.session_factory() as session:
        return await repo.count_active_admins(session)


async def test_admin_is_created_even_when_seeded_users_exist(crm2_app_factory) -> None:
    crm2 = await crm2_app_factory(
        admin_email="boss@example.com", admin_password="first admin password"
    )
    await crm2.create_user("agent")  # e.g. demo data loaded before the first start
    await ensure_first_admin(crm2.context, Console(quiet=True))
    assert await _admins(crm2) == 1
    response = await crm2.client.post(
        "/api/v1/auth/login",
        json={"email": "boss@example.com", "password": "first admin password"},
    )
    assert response.status_code == 200


async def test_no_second_admin_when_one_exists(crm2_app_factory) -> None:
    crm2 = await crm2_app_factory(
        admin_email="boss@example.com", admin_password="first admin password"
    )
    await crm2.create_user("admin")
    await ensure_first_admin(crm2.context, Console(quiet=True))
    assert await _admins(crm2) == 1
