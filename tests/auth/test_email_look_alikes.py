"""A new address that reads as an existing user's, each part in one script: "ace" in
Cyrillic letters (U+0430 U+0441 U+0435) for Latin "ace". The mixed-script rule cannot
see it (no part mixes scripts): the addresses' skeletons (each Cyrillic or Greek
look-alike read as its Latin letter) are compared instead.

Before: the whole-script look-alike of an admin's address was a new account.
"""

from __future__ import annotations

import pytest

from crm2_core.auth.schemas import UserCreate
from crm2_core.errors import Crm2Error
from crm2_core.testing import Crm2TestApp

USERS = "/api/v1/auth/users"
PASSWORD = "a long enough secret"
CYRILLIC_ACE = "\u0430\u0441\u0435"  # "ace" in Cyrillic
GREEK_OPO = "\u03bf\u03c1\u03bf"  # "opo" in Greek


@pytest.mark.parametrize(
    ("existing", "look_alike"),
    [
        ("ace@example.com", f"{CYRILLIC_ACE}@example.com"),  # Cyrillic for an existing Latin
        (f"{CYRILLIC_ACE}@example.com", "ace@example.com"),  # and the other way round
        ("opo@example.com", f"{GREEK_OPO}@example.com"),  # Greek
        ("ace@copy.com", "ace@\u0441\u043e\u0440\u0443.com"),  # a domain label in Cyrillic
    ],
)
async def test_an_address_reading_as_an_existing_one_is_refused(
    crm2: Crm2TestApp, existing: str, look_alike: str
) -> None:
    admin = await crm2.login("admin")
    first = {"email": existing, "password": PASSWORD}
    assert (await crm2.client.post(USERS, json=first, headers=admin)).status_code == 201
    second = {"email": look_alike, "password": PASSWORD}
    response = await crm2.client.post(USERS, json=second, headers=admin)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"].endswith(":email-look-alike"), problem
    assert existing not in problem["detail"]  # the other account is not named
    listed = (await crm2.client.get(USERS, headers=admin)).json()["items"]
    assert look_alike not in [u["email"] for u in listed]


async def test_the_service_refuses_it_too(crm2: Crm2TestApp) -> None:
    """The CLI and plugins create users through the service: the same rule."""
    await crm2.create_user("viewer", email="ace@example.com")
    async with crm2.context.session_factory() as session:
        made = UserCreate(email=f"{CYRILLIC_ACE}@example.com", password=PASSWORD)
        with pytest.raises(Crm2Error) as raised:
            await crm2.auth.create_user(session, made)
        assert raised.value.status == 409


async def test_addresses_that_only_share_some_letters_are_taken(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    for email in (
        "ace@example.com",
        f"{CYRILLIC_ACE}\u0436@example.com",
        "\u0438\u0432@example.com",
    ):
        body = {"email": email, "password": PASSWORD}
        response = await crm2.client.post(USERS, json=body, headers=admin)
        assert response.status_code == 201, (email, response.text)
