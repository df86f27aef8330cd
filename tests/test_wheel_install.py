"""Each distribution installs alone: real wheels, a fresh virtualenv, no source checkout.

Builds non-editable wheels of crm2-hookspecs, crm2-core, the example plugin
crm2-hello, and the third-party-style example crm2-connectors with the two plugins
whose hooks it implements (crm2-notifications, crm2-documents: their hookspecs
must import and their migrations must run from their wheels), installs them into
a new virtualenv (their dependencies come from pip's configured index, through
pip's cache), then runs ``crm2 migrate`` and
``crm2 plugins list`` there from a folder outside the repository, so the
checkout's ``migrations/`` cannot stand in for the one inside the wheel.

Slow (a minute or two): marked ``slow`` so ``-m "not slow"`` skips it locally;
the normal suite and CI run it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "crm2_hookspecs": ROOT / "hookspecs",
    "crm2_core": ROOT,
    "crm2_hello": ROOT / "examples" / "plugins" / "hello",
    "crm2_notifications": ROOT / "plugins" / "notifications",
    "crm2_documents": ROOT / "plugins" / "documents",
    "crm2_connectors": ROOT / "examples" / "plugins" / "connectors",
}
PLUGINS = ("hello", "notifications", "documents", "connectors")
# Variables that would let the venv see the checkout or the caller's crm2 settings.
LEAKY = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_") and k not in LEAKY}
    env.update(
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONIOENCODING="utf-8",
        COLUMNS="200",  # rich would otherwise wrap the table at 80 columns
        NO_COLOR="1",
        **extra,
    )
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done.stdout


def _wheel_of(wheels: Path, package: str) -> Path:
    found = sorted(wheels.glob(f"{package}-*.whl"))
    assert len(found) == 1, f"expected one {package} wheel in {sorted(wheels.iterdir())}"
    return found[0]


def _plugin_rows(table: str) -> dict[str, list[str]]:
    """``crm2 plugins list``'s rich table as ``{name: [version, enabled, depends, status, …]}``."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)]
        cells = [c for c in cells if c]
        if len(cells) >= 5 and re.fullmatch(r"[a-z][a-z0-9_]+", cells[0]):
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_wheels_install_into_a_fresh_venv_then_migrate_and_list_plugins(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels),
         *map(str, SOURCES.values())],
        cwd=tmp_path, env=_env(), timeout=600,
    )  # fmt: skip
    built = {package: _wheel_of(wheels, package) for package in SOURCES}
    with zipfile.ZipFile(built["crm2_core"]) as core_wheel:
        names = set(core_wheel.namelist())
    assert "crm2_core/migrations/env.py" in names
    assert any(n.startswith("crm2_core/migrations/versions/auth/") for n in names)
    with zipfile.ZipFile(built["crm2_hello"]) as hello_wheel:
        assert any(
            re.fullmatch(r"crm2_hello/migrations/versions/[^/]+_hello_[^/]+\.py", n)
            for n in hello_wheel.namelist()
        )

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=_env(), timeout=300)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python, crm2 = bindir / "python", bindir / "crm2"
    _run(
        [str(python), "-m", "pip", "install", "--quiet", *map(str, built.values())],
        cwd=tmp_path, env=_env(), timeout=900,
    )  # fmt: skip

    work = tmp_path / "work"  # no .env, no migrations/ folder next to it
    work.mkdir()
    database = tmp_path / "w.db"
    env = _env(CRM2_DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    where = _run(
        [str(python), "-c", "import crm2_core.migrate as m; print(m.environment_dir())"],
        cwd=work, env=env, timeout=120,
    )  # fmt: skip
    assert Path(where.strip()).resolve().is_relative_to(venv.resolve())

    _run([str(crm2), "migrate"], cwd=work, env=env, timeout=300)
    listing = _run([str(crm2), "plugins", "list"], cwd=work, env=env, timeout=120)

    rows = _plugin_rows(listing)
    assert {"core", "auth", *PLUGINS} <= rows.keys(), listing
    for name in ("core", "auth", *PLUGINS):
        _version, enabled, _depends, status = rows[name][:4]
        assert (enabled, status) == ("yes", "ok"), listing
    assert rows["hello"][0] == "0.1.0", listing
    assert set(rows["connectors"][2].split(",")) == {"notifications", "documents"}, listing

    with sqlite3.connect(database) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "hello_greeting",
        "auth_user",
        "core_idempotency_key",
        "alembic_version_core",
        "alembic_version_auth",
        "alembic_version_hello",
        "alembic_version_notifications",
        "alembic_version_documents",
    } <= tables
