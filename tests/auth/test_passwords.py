"""argon2id at or above OWASP's minimum, refused below it, re-hashed when parameters rise."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from pydantic import ValidationError
from sqlalchemy import update

from crm2_core.auth.config import AuthSettings
from crm2_core.auth.models import User
from crm2_core.errors import ConfigurationError
from crm2_core.testing import Crm2TestApp

LOGIN = "/api/v1/auth/login"
PASSWORD = "correct horse battery staple"
EMAIL = "hashed@example.com"


async def stored_hash(app: Crm2TestApp, user_id: uuid.UUID) -> str:
    async with app.context.session_factory() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.password_hash


async def store_hash(app: Crm2TestApp, user_id: uuid.UUID, password_hash: str) -> None:
    async with app.context.session_factory() as session:
        await session.execute(
            update(User).where(User.id == user_id).values(password_hash=password_hash)
        )
        await session.commit()


async def login(app: Crm2TestApp, password: str = PASSWORD) -> Any:
    return await app.client.post(LOGIN, json={"email": EMAIL, "password": password})


async def test_hash_is_argon2id_at_owasp_minimum_or_above(crm2: Crm2TestApp) -> None:
    user_id = await crm2.create_user("agent", email=EMAIL)
    password_hash = await stored_hash(crm2, user_id)
    assert password_hash.startswith("$argon2id$")
    params = extract_parameters(password_hash)
    assert params.type is Type.ID
    assert params.memory_cost >= 19_456
    assert params.time_cost >= 2
    assert params.parallelism >= 1
    assert PASSWORD not in password_hash


async def test_same_password_hashes_differently_per_user(crm2: Crm2TestApp) -> None:
    first = await crm2.create_user("agent")
    second = await crm2.create_user("agent")
    assert await stored_hash(crm2, first) != await stored_hash(crm2, second)


@pytest.mark.parametrize(
    "weak",
    [
        {"argon2_memory_kib": 19_455},
        {"argon2_memory_kib": 8192},
        {"argon2_time_cost": 1},
        {"argon2_parallelism": 0},
    ],
    ids=["memory-one-below", "memory-8mib", "time-1", "parallelism-0"],
)
def test_settings_below_owasp_minimum_are_rejected(weak: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        AuthSettings(_env_file=None, **weak)  # type: ignore[call-arg]


def test_owasp_minimum_itself_is_accepted() -> None:
    settings = AuthSettings(
        _env_file=None,  # type: ignore[call-arg]
        argon2_memory_kib=19_456,
        argon2_time_cost=2,
        argon2_parallelism=1,
    )
    assert settings.argon2_memory_kib == 19_456


async def test_app_build_refuses_weak_argon2_settings(crm2_app_factory: Any) -> None:
    with pytest.raises(ConfigurationError, match="CRM2_AUTH_ARGON2_MEMORY_KIB"):
        await crm2_app_factory(plugin_settings={"auth": {"argon2_memory_kib": 8192}})


async def test_weaker_stored_hash_is_rehashed_on_login(crm2: Crm2TestApp) -> None:
    user_id = await crm2.create_user("agent", email=EMAIL)
    weak = PasswordHasher(memory_cost=8192, time_cost=1, type=Type.ID).hash(PASSWORD)
    await store_hash(crm2, user_id, weak)
    assert (await login(crm2)).status_code == 200
    rehashed = await stored_hash(crm2, user_id)
    assert rehashed != weak
    params = extract_parameters(rehashed)
    assert (params.memory_cost, params.time_cost) == (19_456, 2)
    assert (await login(crm2)).status_code == 200


async def test_argon2i_stored_hash_is_rehashed_to_argon2id(crm2: Crm2TestApp) -> None:
    user_id = await crm2.create_user("agent", email=EMAIL)
    await store_hash(
        crm2, user_id, PasswordHasher(memory_cost=19_456, time_cost=2, type=Type.I).hash(PASSWORD)
    )
    assert (await login(crm2)).status_code == 200
    assert (await stored_hash(crm2, user_id)).startswith("$argon2id$")


async def test_wrong_password_does_not_rehash(crm2: Crm2TestApp) -> None:
    user_id = await crm2.create_user("agent", email=EMAIL)
    weak = PasswordHasher(memory_cost=8192, time_cost=1, type=Type.ID).hash(PASSWORD)
    await store_hash(crm2, user_id, weak)
    assert (await login(crm2, "not the password")).status_code == 401
    assert await stored_hash(crm2, user_id) == weak


async def test_raised_parameters_rehash_existing_users_on_login(crm2_app_factory: Any) -> None:
    before = await crm2_app_factory()
    user_id = await before.create_user("agent", email=EMAIL)
    after = await crm2_app_factory(plugin_settings={"auth": {"argon2_time_cost": 3}})
    assert (await login(after)).status_code == 200
    assert extract_parameters(await stored_hash(after, user_id)).time_cost == 3


async def test_unparseable_stored_hash_is_401_not_500(crm2: Crm2TestApp) -> None:
    user_id = await crm2.create_user("agent", email=EMAIL)
    await store_hash(crm2, user_id, "not-an-argon2-hash")
    response = await login(crm2)
    assert response.status_code == 401, response.text
