"""The frontend's unit tests (Vitest: stores, the session/refresh logic, the SSE client,
board arithmetic, generic forms), run as part of the Python suite."""

from __future__ import annotations

import subprocess

import pytest
from console_e2e import FRONTEND, node_missing


@pytest.mark.slow
def test_vitest_suite_passes() -> None:
    reason = node_missing()
    if reason:
        pytest.skip(f"Vitest skipped: {reason}")
    done = subprocess.run(
        ["npx", "--no-install", "vitest", "run", "--reporter=dot"],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"Vitest failed:\n{done.stdout}\n{done.stderr}"
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout
