"""The backup plugin's ``take_turns`` keys: a check and the write it leads to as one step
(two requests both seeing "nothing underway", or "the set is completed")."""

from __future__ import annotations

# pg_advisory_xact_lock keys: "crm2bkst" and "crm2bkdr" as 64-bit integers.
SET_REQUESTS = int.from_bytes(b"crm2bkst", "big") - 2**63
# drill and restore runs starting on a set, and retention choosing the sets it prunes
SET_READERS = int.from_bytes(b"crm2bkdr", "big") - 2**63
