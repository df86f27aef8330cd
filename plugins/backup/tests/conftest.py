"""Fixtures for the backup tests; the helpers live in backup_kit.py."""

from __future__ import annotations

from backup_kit import backup  # noqa: F401  (the fixture)
