"""Record-level rules: who sees which documents.

Holders of ``documents:all_records`` (admin, manager, viewer by default) see
every document; anyone else the documents whose ``owner_id`` is theirs. A
document's owner is the owner of the record it is linked to (so visibility
follows the linked record's) or, unlinked, its uploader. Every query applies
the rule in SQL, so get (404), lists, downloads, signed URLs and the
``documents`` stream agree.
"""

from __future__ import annotations

from crm2_core.api import RecordRules

ALL_RECORDS = "documents:all_records"
RULES = RecordRules(ALL_RECORDS)
