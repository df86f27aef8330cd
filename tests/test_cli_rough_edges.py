"""What a new user meets first: serve's start-up order, an unmigrated database, noise."""

from __future__ import annotations

import importlib.util
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
CRM2 = str(Path(sys.executable).with_name("crm2"))


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
    env.update(
        {
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'crm2.db'}",
            "CRM2_ENV": "development",
            "CRM2_PLUGINS": "",
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


def crm2(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRM2, *args],
        cwd=tmp_path,
        env=env_for(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- item 12: the port before the one-time password -----------------------------------------


def test_serve_on_a_busy_port_fails_before_creating_the_admin(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = crm2(tmp_path, "serve", "--migrate", "--port", str(port))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "password" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # nothing was migrated or created: the next start still prints the password
    assert not (tmp_path / "crm2.db").exists() or not _users(tmp_path / "crm2.db")


def _users(path: Path) -> list[Any]:
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT email FROM auth_user").fetchall()
        except sqlite3.OperationalError:
            return []


def test_serve_answers_without_a_server_header_and_warns_once(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [CRM2, "serve", "--migrate", "--port", str(port)],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "crm2 serve did not answer"
            assert process.poll() is None, process.communicate()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response.status_code == 200
        assert "server" not in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
        spoofed = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert spoofed.status_code == 200
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert "First admin created" in out
    assert err.count("CRM2_AUTH_JWT_SECRET is unset") == 1


# -- item 13: an unmigrated database, a relative SQLite path --------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("users", "create", "--email", "a@example.com", "--password", "0123456789ab"),
        ("seed", "demo"),
    ],
)
def test_commands_on_an_unmigrated_database_say_run_migrate(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = crm2(tmp_path, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert lines == [
        f"Error: the database ({tmp_path / 'crm2.db'}) is not migrated: run `crm2 migrate` first"
    ]


def test_a_relative_sqlite_path_is_spelled_out(tmp_path: Path) -> None:
    result = crm2(tmp_path, "migrate", CRM2_DATABASE_URL="sqlite+aiosqlite:///./here.db")
    assert result.returncode == 0, result.stderr
    assert f"SQLite database {tmp_path / 'here.db'}" in result.stderr
    assert (tmp_path / "here.db").exists()


# -- item 16: noise ----------------------------------------------------------------------------


def test_commands_print_no_alembic_info_and_no_secret_warning(tmp_path: Path) -> None:
    for args in (("migrate",), ("plugins", "list"), ("migrate", "current")):
        result = crm2(tmp_path, *args)
        assert result.returncode == 0, result.stderr
        assert "alembic" not in result.stderr, result.stderr
        assert "JWT_SECRET" not in result.stderr, result.stderr


def test_dev_py_keeps_one_install_stamp_per_extras_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("crm2_dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    venv = tmp_path / "venv"
    venv.mkdir()
    python = venv / "python"
    python.write_text("")
    monkeypatch.setattr(dev, "VENV", venv)
    monkeypatch.setattr(dev, "PYTHON", python)
    installs: list[list[str]] = []
    monkeypatch.setattr(dev.subprocess, "run", lambda args, check: installs.append(args))
    for extras in ("test", "", "test", "", "bench"):
        dev.install(extras)
    assert len(installs) == 3  # test, base, bench: each once
