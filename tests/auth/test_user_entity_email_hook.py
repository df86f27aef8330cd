"""The ``auth.user`` entity shows a user's e-mail to holders of ``auth:users`` as their
requests are judged: a ``crm2_check_permission`` hook that denies them ``auth:users``
hides it, as it refuses them the users' admin routes.

Before: the roles alone decided (``principal.has_permission``), so a principal every
``/auth/users`` route refused (403) still read any user's e-mail through a link.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_core.kit.links import resolve_entity
from crm2_core.testing import Crm2TestApp, PermissionVotes
from crm2_hookspecs import Principal


async def test_a_hook_that_denies_auth_users_hides_the_email(crm2_app_factory: Any) -> None:
    rule = PermissionVotes("auth:users")
    crm2: Crm2TestApp = await crm2_app_factory(plugins=[rule.name], extra_plugins=(rule,))
    admin = await crm2.user("admin")
    other = await crm2.user("agent")
    principal = Principal(
        id=admin.id, kind="user", roles=frozenset({"admin"}), permissions=frozenset({"*"})
    )

    async with crm2.context.session_factory() as session:
        shown = await resolve_entity(crm2.context, "auth.user", other.id, principal, session)
        assert shown is not None and shown["email"] == other.email
        rule.deny(admin.id)
        hidden = await resolve_entity(crm2.context, "auth.user", other.id, principal, session)
        assert hidden is not None and "email" not in hidden
        # the user themselves and the system still see it
        themselves = Principal(id=other.id, kind="user", roles=frozenset({"agent"}))
        own = await resolve_entity(crm2.context, "auth.user", other.id, themselves, session)
        assert own is not None and own["email"] == other.email
        system = await resolve_entity(crm2.context, "auth.user", other.id, None, session)
        assert system is not None and system["email"] == other.email

    # in a session of its own (none given) as well
    without = await resolve_entity(crm2.context, "auth.user", other.id, principal)
    assert without is not None and "email" not in without
    # and the routes agree: the same principal is refused the user itself
    response = await crm2.client.get(f"/api/v1/auth/users/{other.id}", headers=admin.headers)
    assert response.status_code == 403, response.text


async def test_an_api_key_sees_its_creators_email(crm2: Crm2TestApp) -> None:
    """A key acts for the user who made it (as ``acting_user`` says everywhere else):
    its creator's own e-mail is no secret to it, without ``auth:users``. Before: the key's
    own id was compared with the user's, so a key never matched anyone."""
    creator = await crm2.user("agent")
    other = await crm2.user("agent")
    key = Principal(
        id=uuid.uuid4(),
        kind="api_key",
        roles=frozenset({"agent"}),
        attributes={"created_by": creator.id},
    )
    async with crm2.context.session_factory() as session:
        own = await resolve_entity(crm2.context, "auth.user", creator.id, key, session)
        assert own is not None and own["email"] == creator.email
        theirs = await resolve_entity(crm2.context, "auth.user", other.id, key, session)
        assert theirs is not None and "email" not in theirs
