"""A record rule without the application's hooks is asked for by name (``roles_only``).

``RecordRules.visibility(principal)`` and ``Records.visibility(principal)`` quietly read
the roles alone: a new call site that forgot the context or session let a principal a
``crm2_check_permission`` hook denies ``all_records`` see every record.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import RecordRules, Records, Visibility, permitted_in_session
from crm2_hookspecs import PluginManifest, Principal, hookimpl

RULES = RecordRules("things:all_records")
MANAGER = Principal(
    id=uuid.uuid4(),
    kind="user",
    roles=frozenset({"manager"}),
    permissions=frozenset({"things:read", "things:all_records"}),
)


def test_no_context_is_a_type_error_unless_roles_only_is_said() -> None:
    with pytest.raises(TypeError, match="roles_only=True"):
        RULES.visibility(MANAGER)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="roles_only=True"):
        RULES.visibility(MANAGER, None)  # type: ignore[call-overload]
    assert RULES.visibility(MANAGER, roles_only=True).unrestricted
    assert RULES.visibility(None) == Visibility.system()


def test_records_without_a_session_is_a_type_error_unless_roles_only_is_said() -> None:
    things: Records[Any] = Records(object(), RULES)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="roles_only=True"):
        things.visibility(MANAGER)  # type: ignore[call-overload]
    assert things.visibility(MANAGER, roles_only=True).unrestricted


async def test_a_session_of_no_application_is_refused_not_read_as_roles_only() -> None:
    session = AsyncSession()
    try:
        with pytest.raises(RuntimeError, match="no application"):
            RULES.in_session(session, MANAGER)
        with pytest.raises(RuntimeError, match="no application"):
            permitted_in_session(session, MANAGER, "things:read")
        assert RULES.in_session(session, None).unrestricted  # the system needs no hooks
    finally:
        await session.close()


class Suspensions:
    manifest = PluginManifest(name="suspensions", title="Suspensions (test only)")

    def __init__(self) -> None:
        self.suspended: set[uuid.UUID] = set()

    @hookimpl
    def crm2_check_permission(self, principal: Principal, permission: str) -> bool | None:
        return False if principal.id in self.suspended else None


async def test_in_session_and_permitted_in_session_ask_the_applications_hooks(
    crm2_app_factory: Any,
) -> None:
    rule = Suspensions()
    crm2 = await crm2_app_factory(plugins=["suspensions"], extra_plugins=(rule,))
    async with crm2.context.session_factory() as session:
        assert RULES.in_session(session, MANAGER).unrestricted
        assert permitted_in_session(session, MANAGER, "things:read")
        assert not permitted_in_session(session, MANAGER, "things:write")  # not in the roles
        rule.suspended.add(MANAGER.id)
        assert RULES.in_session(session, MANAGER).owner_id == MANAGER.id
        assert RULES.in_session(crm2.context.session_factory, MANAGER).owner_id == MANAGER.id
        assert not permitted_in_session(session, MANAGER, "things:read")
        # roles_only says out loud that the hooks are not asked
        assert RULES.visibility(MANAGER, roles_only=True).unrestricted
