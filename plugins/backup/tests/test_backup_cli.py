"""Operator mistakes at ``crm2 backup``: refused up front, in one line, with nothing recorded."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest
from backup_kit import API, KEY, event_types
from click.testing import CliRunner, Result
from crm2_backup import crypto

from crm2_core.testing import TEST_JWT_SECRET, Crm2TestApp, build_cli


def _environment(monkeypatch: pytest.MonkeyPatch, url: str, tmp_path: Path, **extra: str) -> None:
    for name, value in {
        "CRM2_DATABASE_URL": url,
        "CRM2_PLUGINS": "backup",
        "CRM2_ENV": "test",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_BACKUP_DIR": str(tmp_path / "backups"),
        "CRM2_BACKUP_KEY": crypto.encode_key(KEY),
        "CRM2_BACKUP_SCHEDULE": "",
        "CRM2_BACKUP_VERIFY_SCHEDULE": "",
        **extra,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM2_REDIS_URL", raising=False)


def _one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, (result.output, result.exception)
    return errors[0]


async def test_an_unknown_target_is_refused_before_a_set_is_recorded(
    backup: Crm2TestApp, crm2_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _environment(monkeypatch, crm2_database.url, tmp_path, CRM2_BACKUP_TARGETS="postgers")

    result = await asyncio.to_thread(CliRunner().invoke, build_cli(), ["backup", "run"])

    assert result.exit_code != 0, (result.output, result.exception)
    error = _one_error_line(result)
    assert "postgers" in error and "CRM2_BACKUP_TARGETS" in error, error
    admin = await backup.login("admin")
    assert (await backup.client.get(f"{API}/sets", headers=admin)).json()["items"] == []
    assert (await backup.client.get(f"{API}/runs", headers=admin)).json()["items"] == []
    assert await event_types(backup) == []
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())


def test_keygen_refuses_a_missing_folder_and_makes_none(tmp_path: Path) -> None:
    out = tmp_path / "typo" / "crm2-backup.key"

    result = CliRunner().invoke(build_cli(), ["backup", "keygen", "--out", str(out)])

    assert result.exit_code != 0, (result.output, result.exception)
    assert str(tmp_path / "typo") in _one_error_line(result)
    assert not (tmp_path / "typo").exists()


def test_keygen_writes_a_0600_key_into_an_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "crm2-backup.key"

    result = CliRunner().invoke(build_cli(), ["backup", "keygen", "--out", str(out)])

    assert result.exit_code == 0, (result.output, result.exception)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(crypto.decode_key(out.read_text(encoding="ascii"))) == 32


def test_keygen_into_a_folder_it_cannot_write_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")

    result = CliRunner().invoke(
        build_cli(), ["backup", "keygen", "--out", str(tmp_path / "a-file" / "k.key")]
    )

    assert result.exit_code != 0, (result.output, result.exception)
    assert "a-file" in _one_error_line(result)
