"""The ``documents`` live channel: every ``documents.*`` event, for those who may see it.

Holders of ``documents:all_records`` see every event; anyone else the events of
documents they own (``owner_id`` travels in every event's data).
"""

from __future__ import annotations

from crm2_documents.visibility import RULES
from crm2_hookspecs import SseChannel


def channels() -> list[SseChannel]:
    return [
        SseChannel(
            name="documents",
            event_types=("documents.*",),
            permission="documents:read",
            can_see=RULES.can_see,
        )
    ]
