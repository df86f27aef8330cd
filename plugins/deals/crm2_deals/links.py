"""What other plugins see of deals' records through ``crm2_resolve_entity``.

``deals.client``, ``deals.contact``, ``deals.deal`` and ``deals.policy``, each
with the caller's visibility: a record the caller may not open resolves to
``None``, exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

from crm2_core.api import EntityResolver
from crm2_deals.models import Client, Contact, Deal, Policy
from crm2_deals.repository.clients import clients, contacts
from crm2_deals.repository.deals import deals
from crm2_deals.repository.policies import policies
from crm2_deals.visibility import RULES


def _client(row: Client) -> dict[str, Any]:
    return {"kind": "deals.client", "id": str(row.id), "name": row.name,
            "owner_id": str(row.owner_id), "archived": row.archived}  # fmt: skip


def _contact(row: Contact) -> dict[str, Any]:
    return {"kind": "deals.contact", "id": str(row.id), "name": row.name,
            "client_id": str(row.client_id)}  # fmt: skip


def _deal(row: Deal) -> dict[str, Any]:
    return {"kind": "deals.deal", "id": str(row.id), "name": row.title, "status": row.status,
            "client_id": str(row.client_id), "owner_id": str(row.owner_id)}  # fmt: skip


def _policy(row: Policy) -> dict[str, Any]:
    return {"kind": "deals.policy", "id": str(row.id), "name": f"{row.insurer} {row.number}",
            "status": row.status, "client_id": str(row.client_id),
            "owner_id": str(row.owner_id)}  # fmt: skip


RESOLVER = EntityResolver(
    RULES,
    {
        "deals.client": clients.resolver(_client),
        "deals.contact": contacts.resolver(_contact),
        "deals.deal": deals.resolver(_deal),
        "deals.policy": policies.resolver(_policy),
    },
)
