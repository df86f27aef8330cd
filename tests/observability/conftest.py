from __future__ import annotations

import sys
from pathlib import Path

# the event-bus probe plugin (tests/events/probe_plugin.py) drives handlers here too
sys.path.insert(0, str(Path(__file__).parents[1] / "events"))

import probe_plugin
import pytest


@pytest.fixture(autouse=True)
def _reset_probe() -> None:
    probe_plugin.FAILURES.clear()
    probe_plugin.ATTEMPTS.clear()
