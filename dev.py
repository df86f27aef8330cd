#!/usr/bin/env python3
"""The two commands of a fresh clone, needing only Python 3.11 and pip.

    python3 dev.py run    install into .venv and run crm2 on http://127.0.0.1:8000
    python3 dev.py test   install the test tools into .venv; mypy --strict, then the whole suite
    python3 dev.py bench  install the benchmark tools and run bench/run.py [--quick] [--only 1,3b]

Everything installs into ./.venv from the project's own pyproject files:
crm2-hookspecs, crm2-core and every plugin under plugins/.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


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
    marker = VENV / ".crm2-installed"
    if marker.exists() and marker.read_text() == stamp:
        return
    args = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for target in targets:
        spec = f"{target}[{extras}]" if extras and target == ROOT else str(target)
        args += ["-e", spec]
    subprocess.run(args, check=True)
    marker.write_text(stamp)


def run(argv: list[str]) -> int:
    install("")
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
    databases = os.environ.get("CRM2_TEST_DATABASES", "sqlite,postgresql")
    command = [str(PYTHON), "-m", "pytest", "--crm2-db", databases, *argv]
    return subprocess.call(command, cwd=ROOT)


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
