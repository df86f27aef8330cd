"""Helpers for the console's browser and Vitest runs: where things are, why a run must skip."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FRONTEND = ROOT / "frontend"
# What the plugin serves by default: dev.py copies the build of frontend/ here.
BUILD = ROOT / "plugins" / "console" / "crm2_console" / "static"
CHROMIUM = Path(os.environ.get("CRM2_E2E_CHROMIUM", "/usr/bin/chromium"))
CRM2 = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "crm2"


def node_missing() -> str:
    """Why the frontend's own tests cannot run here, or '' when they can."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "Node.js/npm not found: install them (python3 dev.py test then builds the console)"
    if not (FRONTEND / "node_modules" / ".bin" / "vitest").exists():
        return "frontend/node_modules missing: run python3 dev.py test (it runs npm install)"
    return ""


def browser_missing() -> str:
    """Why the browser tests cannot run here, or '' when they can."""
    said = os.environ.get("CRM2_E2E_UNAVAILABLE", "")
    if said:
        return said
    if node_missing():
        return node_missing()
    if not (BUILD / "index.html").exists():
        return "the console is not built (crm2_console/static): run python3 dev.py test"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: python3 dev.py test installs Debian's chromium"
    return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def crm2(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(CRM2), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"crm2 {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def running_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """The app (with the example plugin hello) on a free loopback port; yields its base URL."""
    port = free_port()
    with log.open("wb") as out:
        server = FRONTEND / "e2e" / "serve.py"
        process = subprocess.Popen(
            [str(CRM2.parent / "python"), str(server), str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(log.read_text()[-3000:]) from None
                    time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
