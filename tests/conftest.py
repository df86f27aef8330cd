"""The whole run's log is recorded as crm2 would write it and searched for secrets at the end."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest

from crm2_core.testing.app import TEST_JWT_SECRET, TEST_PASSWORD
from crm2_core.testing.secret_scan import find_leaks, start_recording, stop_recording

_recording: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    path = Path(tempfile.mkdtemp(prefix="crm2-run-log-")) / "run.jsonl"
    _recording["path"] = path
    _recording["handler"] = start_recording(path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = _recording.pop("handler", None)
    path = _recording.pop("path", None)
    if not isinstance(handler, logging.Handler) or not isinstance(path, Path):
        return
    stop_recording(handler)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    leaks = find_leaks(lines, [TEST_JWT_SECRET, TEST_PASSWORD])
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_sep("=", "secrets in the run's log", red=True)
            for leak in leaks[:20]:
                reporter.write_line(leak)
            reporter.write_line(f"(log kept at {path})")
        return
    if reporter is not None:
        reporter.write_line(f"log secret scan: {len(lines)} lines, no secret found")
    path.unlink(missing_ok=True)
    path.parent.rmdir()
