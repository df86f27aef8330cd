"""The whole run's log is recorded as crm2 would write it and searched for secrets at the end,
and the tests marked ``slow`` run first.

Under pytest-xdist every worker records its own file in one directory the controller
made; the controller searches them all once the workers are done.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from crm2_core.testing.app import TEST_JWT_SECRET, TEST_PASSWORD
from crm2_core.testing.secret_scan import find_leaks, start_recording, stop_recording

DIR_KEY = "crm2_run_log_dir"
_recording: dict[str, Any] = {}


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        _recording["dir"] = Path(config.workerinput[DIR_KEY])  # type: ignore[attr-defined]
        _recording["name"] = config.workerinput.get("workerid", "worker")  # type: ignore[attr-defined]
    else:
        _recording["dir"] = Path(tempfile.mkdtemp(prefix="crm2-run-log-"))
        _recording["name"] = "controller"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first, in their collection order, the rest after them.

    pytest-xdist hands tests out in this order, so each slow one starts on a worker
    at the beginning of the run instead of wherever it was collected: the schemathesis
    run (minutes) collected halfway used to be the last test running, alone on one core.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, in the controller: tell each worker where to write its log."""
    node.workerinput[DIR_KEY] = str(_recording["dir"])


def pytest_sessionstart(session: pytest.Session) -> None:
    path = _recording["dir"] / f"{_recording['name']}.jsonl"
    _recording["handler"] = start_recording(path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = _recording.pop("handler", None)
    if isinstance(handler, logging.Handler):
        stop_recording(handler)
    if _is_worker(session.config):
        return  # the controller searches every worker's file
    directory: Path = _recording["dir"]
    lines: list[str] = []
    for path in sorted(directory.glob("*.jsonl")):
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    leaks = find_leaks(lines, [TEST_JWT_SECRET, TEST_PASSWORD])
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_sep("=", "secrets in the run's log", red=True)
            for leak in leaks[:20]:
                reporter.write_line(leak)
            reporter.write_line(f"(logs kept in {directory})")
        return
    if reporter is not None:
        reporter.write_line(f"log secret scan: {len(lines)} lines, no secret found")
    shutil.rmtree(directory, ignore_errors=True)
