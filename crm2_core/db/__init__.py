"""Database plumbing shared by the core and every plugin."""

from __future__ import annotations

from crm2_core.db.metadata import NAMING_CONVENTION, metadata
from crm2_core.db.types import UtcDateTime, new_id, utcnow

__all__ = ["NAMING_CONVENTION", "UtcDateTime", "metadata", "new_id", "utcnow"]
