"""``user_permitted``: a user's right as it is now, for credentials that are not a
request's principal (a feed's token): the roles as stored, an inactive user refused."""

from __future__ import annotations

import uuid

from crm2_core.api import user_permitted, users_permitted
from crm2_core.auth import repository as repo
from crm2_core.testing import Crm2TestApp

ROLES = "/api/v1/auth/roles"


async def test_a_users_right_follows_their_roles_and_standing_at_once(crm2: Crm2TestApp) -> None:
    context = crm2.context
    admin = await crm2.user("admin")
    made = await crm2.client.post(
        ROLES, json={"name": "helper", "permissions": ["auth:users"]}, headers=admin.headers
    )
    assert made.status_code == 201, made.text
    helper = await crm2.user("helper")

    async def holds(user_id: uuid.UUID, permission: str) -> bool:
        async with context.session_factory() as session:
            return await user_permitted(context, session, user_id, permission)

    assert await holds(admin.id, "auth:users")  # through "*"
    assert await holds(helper.id, "auth:users") and not await holds(helper.id, "auth:api_keys")
    emptied = await crm2.client.patch(
        f"{ROLES}/helper",
        json={"permissions": []},
        headers={**admin.headers, "If-Match": made.headers["ETag"]},
    )
    assert emptied.status_code == 200, emptied.text
    assert not await holds(helper.id, "auth:users")
    async with context.session_factory() as session:
        await repo.set_roles(session, helper.id, ["admin"])
        user = await repo.user_by_id(session, helper.id)
        assert user is not None
        user.is_active = False
        await session.commit()
    assert not await holds(helper.id, "auth:users")


async def test_users_permitted_answers_as_user_permitted_does_for_many_at_once(
    crm2: Crm2TestApp,
) -> None:
    context = crm2.context
    admin = await crm2.user("admin")
    made = await crm2.client.post(
        ROLES, json={"name": "helper", "permissions": ["auth:users"]}, headers=admin.headers
    )
    assert made.status_code == 201, made.text
    helper, other = (await crm2.user("helper")).id, (await crm2.user("viewer")).id
    gone = (await crm2.user("admin")).id
    async with context.session_factory() as session:
        user = await repo.user_by_id(session, gone)
        assert user is not None
        user.is_active = False
        await session.commit()
    everyone = [admin.id, helper, other, gone, uuid.uuid4()]
    async with context.session_factory() as session:
        for permission in ("auth:users", "auth:api_keys"):
            batch = await users_permitted(context, session, everyone, permission)
            one_by_one = {
                u for u in everyone if await user_permitted(context, session, u, permission)
            }
            assert batch == one_by_one, permission
        assert await users_permitted(context, session, everyone, "auth:users") == {admin.id, helper}
        assert await users_permitted(context, session, [], "auth:users") == set()
