"""Fixtures for the backup tests; the helpers live in backup_kit.py."""

from __future__ import annotations

from backup_kit import backup, dropped_databases  # noqa: F401  (the fixtures)
