"""What other plugins see of payments through ``crm2_resolve_entity``.

``payments.payment`` and ``payments.schedule``, with the caller's visibility: a
record the caller may not open resolves to ``None``, exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

from crm2_core.api import EntityResolver
from crm2_payments.models import Payment, Schedule
from crm2_payments.repository.payments import payments, schedules
from crm2_payments.service.money import text
from crm2_payments.visibility import RULES


def _payment(p: Payment) -> dict[str, Any]:
    return {"kind": "payments.payment", "id": str(p.id),
            "name": p.reference or f"{text(p.amount_minor, p.currency)} {p.currency}",
            "amount": text(p.amount_minor, p.currency), "currency": p.currency,
            "status": p.status, "due_date": p.due_date.isoformat() if p.due_date else None,
            "owner_id": str(p.owner_id)}  # fmt: skip


def _schedule(s: Schedule) -> dict[str, Any]:
    return {"kind": "payments.schedule", "id": str(s.id), "name": f"schedule of {s.policy_id}",
            "policy_id": s.policy_id, "status": s.status, "owner_id": str(s.owner_id)}  # fmt: skip


RESOLVER = EntityResolver(
    RULES,
    {
        "payments.payment": payments.resolver(_payment),
        "payments.schedule": schedules.resolver(_schedule),
    },
)
