"""Fixtures for the notifications tests; the helpers live in notifications_kit.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from notifications_kit import notifications, smtp_server, tls_smtp_server  # noqa: F401
