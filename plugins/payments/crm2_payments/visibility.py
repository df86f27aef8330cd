"""Record-level rules: who sees which payments.

Holders of ``payments:all_records`` (admin, manager, viewer by default) see
every payment; anyone else the payments they own. A payment's owner is the
owner of the record it belongs to (the policy's agent for a schedule's
instalments, the linked record's owner for one entered by hand), so an agent
sees the payments of the records they can see. Every query applies it in SQL
(get → 404, list, export, balances, commissions) and the ``payments`` stream
applies the same rule to the ``owner_id`` every event carries.
"""

from __future__ import annotations

from crm2_core.api import RecordRules

ALL_RECORDS = "payments:all_records"
RULES = RecordRules(ALL_RECORDS)
