"""Record-level rules: a user sees only their own notifications, preferences and links.

Unlike deals there is no permission that lifts it: an admin's feed is theirs
alone too. Admins read the delivery log (``notifications:admin``) instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm2_core.api import Visibility, acting_user
from crm2_hookspecs import Principal


def own(principal: Principal) -> Visibility:
    """The principal's own rows (an API key: its creator's)."""
    return Visibility(owner_id=acting_user(principal))


def _data(event: Any) -> Mapping[str, Any]:
    data = event.get("data") if isinstance(event, Mapping) else getattr(event, "data", None)
    return data if isinstance(data, Mapping) else {}


async def can_see(principal: Principal, event: Any, context: Any = None) -> bool:
    """The ``notifications`` stream: only events addressed to the subscriber."""
    return str(_data(event).get("user_id")) == str(acting_user(principal))
