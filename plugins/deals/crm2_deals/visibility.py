"""Record-level rules: who sees which clients, deals, policies and activities.

Admins, managers and viewers hold ``deals:all_records`` and see every record
(unless a ``crm2_check_permission`` hook denies it them, as it would deny a route);
agents see (and edit) the records they own. Services turn the caller into a
``Visibility`` with ``RULES.in_session(session, principal)``; every repository query
applies it, so the rule holds for get-by-id (404), lists, exports, timelines,
summaries and the ``deals`` stream alike.
"""

from __future__ import annotations

from crm2_core.api import RecordRules

ALL_RECORDS = "deals:all_records"
RULES = RecordRules(ALL_RECORDS)
