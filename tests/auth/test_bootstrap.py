"""The first admin that `crm2 serve` creates."""

from __future__ import annotations

import pytest
from rich.console import Console

from crm2_core.auth import repository as repo
from crm2_core.cli.bootstrap import ensure_first_admin
from crm2_core.errors import ConfigurationError
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


async def test_the_first_admins_address_is_normalised_as_sign_in_does(crm2_app_factory) -> None:
    """CRM2_ADMIN_EMAIL written with a decomposed é finds the account "josé@…" signs in
    as (found, not created twice: no start-up failing on email-taken)."""
    crm2 = await crm2_app_factory(
        admin_email="Jose\u0301@Example.com", admin_password="first admin password"
    )
    await crm2.create_user("agent", email="jos\u00e9@example.com")
    await ensure_first_admin(crm2.context, Console(quiet=True))
    assert await _admins(crm2) == 0  # the existing account is not promoted behind one's back


async def test_a_first_admin_with_a_decomposed_address_signs_in(crm2_app_factory) -> None:
    crm2 = await crm2_app_factory(
        admin_email="Jose\u0301@Example.com", admin_password="first admin password"
    )
    console = Console(record=True, width=200)
    await ensure_first_admin(crm2.context, console)
    assert "jos\u00e9@example.com" in console.export_text()
    for email in ("jos\u00e9@example.com", "Jose\u0301@Example.com"):
        response = await crm2.client.post(
            "/api/v1/auth/login", json={"email": email, "password": "first admin password"}
        )
        assert response.status_code == 200, (email, response.text)


async def test_a_full_width_first_admin_address_is_a_configuration_error(
    crm2_app_factory,
) -> None:
    crm2 = await crm2_app_factory(
        admin_email="\uff41dmin@example.com", admin_password="first admin password"
    )
    with pytest.raises(ConfigurationError, match="CRM2_ADMIN_EMAIL"):
        await ensure_first_admin(crm2.context, Console(quiet=True))
    assert await _admins(crm2) == 0
