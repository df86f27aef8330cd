"""Commission rules and the commission ledger: their repositories (queries, visibility)."""

from __future__ import annotations

from sqlmodel import col

from crm2_core.api import Repository, Sorts
from crm2_payments.errors import RuleNotFound
from crm2_payments.models import Commission, CommissionRule

rules = Repository(
    CommissionRule,
    RuleNotFound,
    sorts=Sorts(
        {"created_at": col(CommissionRule.created_at)},
        id_column=col(CommissionRule.id),
        default="-created_at",
    ),
    noun="commission rule",
)
commissions = Repository(
    Commission,
    RuleNotFound,
    owner=col(Commission.owner_id),
    sorts=Sorts(
        {"created_at": col(Commission.created_at)},
        id_column=col(Commission.id),
        default="-created_at",
    ),
    noun="commission",
)
