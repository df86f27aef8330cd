"""Fixtures for the payments tests; the helpers live in payments_kit.py."""

from __future__ import annotations

from payments_kit import payments, with_deals, with_tasks  # noqa: F401  (the fixtures)
