"""Fixtures for the tasks tests; the helpers live in tasks_kit.py."""

from __future__ import annotations

from tasks_kit import periods, tasks  # noqa: F401  (the fixtures)
