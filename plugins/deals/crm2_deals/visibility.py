"""Record-level rules: who sees which clients, deals, policies and activities.

Admins, managers and viewers hold ``deals:all_records`` and see every record;
agents see (and edit) the records they own. Every repository query takes a
``Visibility`` and applies it, so the rule holds for get-by-id (404),
lists, exports, timelines, summaries and the ``deals`` stream alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from crm2_hookspecs import Principal

ALL_RECORDS = "deals:all_records"


@dataclass(frozen=True)
class Visibility:
    """``owner_id is None`` means every record; otherwise only that owner's."""

    owner_id: uuid.UUID | None

    @classmethod
    def of(cls, principal: Principal) -> Visibility:
        if principal.has_permission(ALL_RECORDS):
            return cls(owner_id=None)
        owner = principal.attributes.get("created_by") if principal.kind == "api_key" else None
        return cls(owner_id=owner if isinstance(owner, uuid.UUID) else principal.id)

    @classmethod
    def system(cls) -> Visibility:
        return cls(owner_id=None)

    def where(self, owner_column: Any) -> Any:
        """A WHERE clause for the model's ``owner_id`` column (``True`` when unrestricted)."""
        from sqlalchemy import true

        return true() if self.owner_id is None else owner_column == self.owner_id

    def allows(self, owner_id: uuid.UUID) -> bool:
        return self.owner_id is None or self.owner_id == owner_id
