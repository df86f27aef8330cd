"""Fixtures for the documents tests; the helpers live in documents_kit.py."""

from __future__ import annotations

from documents_kit import docs  # noqa: F401  (the fixture)
