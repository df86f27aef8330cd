"""The owner rule never quietly answers by the roles alone: a session of no application
(whose ``crm2_check_permission`` hooks cannot be asked) raises, as ``RecordRules`` does.

Before: ``resolve_owner``'s check of the caller themselves (``_holds``) and
``user_grants(..., hooks=True)`` fell back to the roles for such a session, so a
caller a hook bars from writing was accepted as an owner.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import Visibility, resolve_owner, user_grants
from crm2_core.testing import Crm2TestApp, PermissionVotes
from crm2_hookspecs import Principal


def caller(user_id: uuid.UUID) -> Principal:
    return Principal(
        id=user_id,
        kind="user",
        roles=frozenset({"admin"}),
        permissions=frozenset({"*"}),
        attributes={"credentials_version": 1},  # as a signed-in request's principal
    )


async def test_a_session_of_no_application_is_refused_not_read_by_roles(
    crm2: Crm2TestApp,
) -> None:
    admin = await crm2.user("admin")
    principal = caller(admin.id)
    async with AsyncSession(crm2.context.engine) as session:
        with pytest.raises(RuntimeError, match="no application"):
            await resolve_owner(session, principal, Visibility.system(), None, may_own="x:write")
        with pytest.raises(RuntimeError, match="no application"):
            await user_grants(session, admin.id, ("auth:users",), hooks=True)
        # no hooks asked for: the roles are the answer, as documented
        assert await user_grants(session, admin.id, ("auth:users",)) == {"auth:users"}


async def test_the_applications_session_asks_its_hooks(crm2_app_factory: Any) -> None:
    rule = PermissionVotes("auth:users")
    crm2: Crm2TestApp = await crm2_app_factory(plugins=[rule.name], extra_plugins=(rule,))
    admin = await crm2.user("admin")
    principal = caller(admin.id)
    async with crm2.context.session_factory() as session:
        owner = await resolve_owner(
            session, principal, Visibility.system(), None, may_own="auth:users"
        )
        assert owner == admin.id
        rule.deny(admin.id)
        from crm2_core.kit.owners import OwnerNotPermitted

        with pytest.raises(OwnerNotPermitted):
            await resolve_owner(session, principal, Visibility.system(), None, may_own="auth:users")
        assert await user_grants(session, admin.id, ("auth:users",), hooks=True) == frozenset()
