"""A third-party permission rule for tests: a plugin implementing ``crm2_check_permission``
that votes on one permission per user, as a branch rule or a suspension would::

    rule = PermissionVotes("deals:all_records", depends=("deals",))
    app = await crm2_app_factory(plugins=["deals", rule.name], extra_plugins=(rule,))
    rule.votes[manager.id] = False  # denied, whatever the roles grant
    rule.votes[agent.id] = True  # "yes": left to the roles (a hook widens no one)
    rule.votes.clear()  # no vote: the roles alone again

The hook is asked per request, so a test changes the votes between requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from crm2_hookspecs import PluginManifest, Principal, hookimpl

__all__ = ["PermissionVotes"]


class PermissionVotes:
    """Votes on ``permission``: ``votes[user_id]`` for a user it has one for, else none."""

    def __init__(
        self, permission: str, *, depends: Sequence[str] = (), name: str = "votes"
    ) -> None:
        self.name = name
        self.manifest = PluginManifest(
            name=name, title=f"Votes on {permission} (test only)", depends=tuple(depends)
        )
        self.permission = permission
        self.votes: dict[uuid.UUID, bool] = {}

    def deny(self, *user_ids: uuid.UUID) -> None:
        """The hook says no to these users (until the votes change)."""
        self.votes.update(dict.fromkeys(user_ids, False))

    @hookimpl
    def crm2_check_permission(self, principal: Principal, permission: str) -> bool | None:
        return self.votes.get(principal.id) if permission == self.permission else None
