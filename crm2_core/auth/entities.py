"""The auth plugin's answer to ``crm2_resolve_entity``: the ``auth.user`` other plugins link to."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.auth.models import User
from crm2_core.auth.privileges import acting_user
from crm2_core.http.principal import permitted
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext


async def resolve_user(
    context: AppContext, id: str, principal: Principal | None, session: AsyncSession | None = None
) -> Mapping[str, Any] | None:
    """The ``auth.user`` entity: id, name and whether active; the e-mail for the system,
    the user themselves (through an API key of theirs too: a key acts for its creator)
    and holders of ``auth:users`` (as a request of theirs is judged: a
    ``crm2_check_permission`` hook that denies it hides the e-mail)."""
    try:
        user_id = uuid.UUID(str(id))
    except ValueError:
        return None
    if session is not None:
        user = await session.get(User, user_id)
    else:
        async with context.session_factory() as own:
            user = await own.get(User, user_id)
    if user is None:
        return None
    answer: dict[str, Any] = {
        "kind": "auth.user",
        "id": str(user.id),
        "name": user.full_name or user.email.split("@", 1)[0],
        "is_active": user.is_active,
    }
    if (
        principal is None
        or acting_user(principal) == user.id
        or permitted(context, principal, "auth:users")
    ):
        answer["email"] = user.email
    return answer
