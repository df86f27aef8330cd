#!/usr/bin/env python3
"""The two commands of a fresh clone, needing only Python 3.11 and pip.

    python3 dev.py run    install into .venv, build the console, run crm2 on http://127.0.0.1:8000
    python3 dev.py test   install the test tools (and Chromium); mypy --strict, then the whole suite
    python3 dev.py bench  install the benchmark tools and run bench/run.py [--quick] [--only 1,3b]

Everything installs into ./.venv from the project's own pyproject files:
crm2-hookspecs, crm2-core and every plugin under plugins/. The web console
(frontend/) is built with the machine's Node.js and npm when they are there
(rebuilt only when its sources or the API change) into the console plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
FRONTEND = ROOT / "frontend"
CONSOLE_STATIC = ROOT / "plugins" / "console" / "crm2_console" / "static"
CHROMIUM = Path("/usr/bin/chromium")
# Inputs of the console build; the API's OpenAPI document is hashed in too.
CONSOLE_SOURCES = ("src", "package.json", "package-lock.json", "next.config.mjs", "tsconfig.json")


def plugin_dirs() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def install(extras: str) -> None:
    """pip install -e the project (skipped when nothing it depends on changed)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 is
        sys.exit("crm2 needs Python 3.11 or newer")
    if not PYTHON.exists():
        venv.create(VENV, with_pip=True)
    targets = [ROOT / "hookspecs", ROOT, *plugin_dirs()]
    stamp_source = extras + "".join((t / "pyproject.toml").read_text() for t in targets)
    stamp = hashlib.sha256(stamp_source.encode()).hexdigest()
    # One stamp per extras set: `run` (no extras) and `test` must not undo each other's.
    marker = VENV / f".crm2-installed-{extras or 'base'}"
    if marker.exists() and marker.read_text() == stamp:
        return
    args = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for target in targets:
        spec = f"{target}[{extras}]" if extras and target == ROOT else str(target)
        args += ["-e", spec]
    subprocess.run(args, check=True)
    marker.write_text(stamp)


def strip_lock_urls(lock: Path) -> None:
    """Drop every URL (``resolved``, ``funding``) from package-lock.json: no host is committed."""
    if not lock.exists():
        return
    data = json.loads(lock.read_text())
    for entry in data.get("packages", {}).values():
        entry.pop("resolved", None)
        entry.pop("funding", None)
    lock.write_text(json.dumps(data, indent=2) + "\n")


def _digest(paths: list[Path], extra: bytes = b"") -> str:
    digest = hashlib.sha256(extra)
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.exists():
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def node_tools() -> tuple[str, str] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    return (node, npm) if node and npm else None


def npm_install(npm: str) -> None:
    """``npm install`` when package.json or the lock changed (or node_modules is missing)."""
    stamp = _digest([FRONTEND / "package.json", FRONTEND / "package-lock.json"])
    marker = FRONTEND / "node_modules" / ".crm2-installed"
    if marker.exists() and marker.read_text() == stamp:
        return
    print("console: npm install (frontend/package.json changed or first run)", flush=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FRONTEND, check=True
    )
    strip_lock_urls(FRONTEND / "package-lock.json")
    marker.write_text(_digest([FRONTEND / "package.json", FRONTEND / "package-lock.json"]))


def build_console() -> bool:
    """Build frontend/ into the console plugin when Node.js and npm are here; False if skipped."""
    tools = node_tools()
    if tools is None:
        print("console: Node.js/npm not found, skipped building the web console (API only)")
        return False
    _node, npm = tools
    npm_install(npm)
    openapi = FRONTEND / "openapi.json"
    made = subprocess.run(
        [str(BIN / "crm2"), "openapi", "--all-plugins", "--output", str(openapi)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        sys.exit(f"console: crm2 openapi failed:\n{made.stdout}{made.stderr}")
    stamp = _digest([FRONTEND / name for name in CONSOLE_SOURCES], openapi.read_bytes())
    marker = CONSOLE_STATIC / ".crm2-built"
    if marker.exists() and marker.read_text() == stamp:
        return True
    print("console: building the web console (frontend/ or the API changed)", flush=True)
    subprocess.run([npm, "run", "--silent", "gen:api"], cwd=FRONTEND, check=True)
    subprocess.run(
        [npm, "run", "--silent", "build"],
        cwd=FRONTEND,
        check=True,
        env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1"},
    )
    shutil.rmtree(CONSOLE_STATIC, ignore_errors=True)
    shutil.copytree(FRONTEND / "out", CONSOLE_STATIC)
    marker.write_text(stamp)
    return True


def ensure_chromium() -> str:
    """Debian's Chromium for the browser tests; '' when present, else why it is missing."""
    if CHROMIUM.exists():
        return ""
    apt_get = shutil.which("apt-get")
    if apt_get is None or (hasattr(os, "geteuid") and os.geteuid() != 0):
        return "chromium is not installed and apt-get is not usable here (needs root)"
    print("console: installing Debian's chromium for the browser tests (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> bool:
        quiet = subprocess.DEVNULL
        return subprocess.call([apt_get, *args], env=env, stdout=quiet, stderr=quiet) == 0

    if not apt("install", "-y", "-q", "chromium"):
        apt("update", "-q")  # a fresh machine's package lists may be missing or old
        apt("install", "-y", "-q", "chromium")
    if CHROMIUM.exists():
        return ""
    return "apt-get install chromium failed"


def run(argv: list[str]) -> int:
    install("")
    build_console()
    os.environ.setdefault("CRM2_DATABASE_URL", f"sqlite+aiosqlite:///{ROOT / 'crm2.db'}")
    command = [
        str(BIN / "crm2"),
        "serve",
        "--migrate",
        "--host",
        "127.0.0.1",
        "--port",
        "8000",
        *argv,
    ]
    return subprocess.call(command, cwd=ROOT)


def typecheck() -> int:
    """mypy --strict on what [tool.mypy] in pyproject.toml lists (seconds with its cache)."""
    return subprocess.call([str(PYTHON), "-m", "mypy"], cwd=ROOT)


def test(argv: list[str]) -> int:
    install("test")
    if typecheck() != 0:
        print("mypy --strict failed: fix the type errors above before the tests run")
        return 1
    if build_console():
        missing = ensure_chromium()
        if missing:
            print(f"console: browser tests will be skipped: {missing}")
            os.environ["CRM2_E2E_UNAVAILABLE"] = missing
    else:
        os.environ["CRM2_E2E_UNAVAILABLE"] = "Node.js/npm not found: the console is not built"
    databases = os.environ.get("CRM2_TEST_DATABASES", "sqlite,postgresql")
    command = [str(PYTHON), "-m", "pytest", "--crm2-db", databases, *workers(argv), *argv]
    return subprocess.call(command, cwd=ROOT)


def workers(argv: list[str]) -> list[str]:
    """Two pytest-xdist workers per core, unless the caller chose (-n 0, -p no:xdist).

    The suite waits more than it computes (processes starting, brokers, servers): on
    2 cores, 4 workers ran it in 12-13 min where 2 took 16. At most 8, since each
    worker holds databases and connections of its own on the one PostgreSQL.
    """
    if any(arg.startswith(("-n", "--numprocesses", "--dist")) or arg == "no:xdist" for arg in argv):
        return []
    return ["-n", str(min(2 * (os.cpu_count() or 1), 8))]


def bench(argv: list[str]) -> int:
    install("bench")
    return subprocess.call([str(PYTHON), str(ROOT / "bench" / "run.py"), *argv], cwd=ROOT)


COMMANDS = {"run": run, "test": test, "bench": bench}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
