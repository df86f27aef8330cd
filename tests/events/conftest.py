from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import probe_plugin


@pytest.fixture(autouse=True)
def _reset_probe() -> None:
    probe_plugin.FAILURES.clear()
    probe_plugin.ATTEMPTS.clear()
