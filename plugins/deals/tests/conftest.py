"""Fixtures for the deals tests; the helpers live in deals_kit.py.

Test modules import from ``deals_kit``, never from ``conftest``: several test
folders have a conftest.py, and only one of them can be the ``conftest`` module.
"""

from __future__ import annotations

from deals_kit import counting_deals, deals  # noqa: F401  (the fixtures)
