from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import probe_plugin


def _reset() -> None:
    probe_plugin.FAILURES.clear()
    probe_plugin.ATTEMPTS.clear()
    probe_plugin.APPLIED.clear()
    probe_plugin.MAX_RETRIES[0] = 2
    probe_plugin.SLOW_SECONDS[0] = 0.0


@pytest.fixture(autouse=True)
def _reset_probe() -> Iterator[None]:
    # after the test too: other folders' tests (observability) use the probe plugin
    _reset()
    yield
    _reset()
