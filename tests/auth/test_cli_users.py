"""``crm2 users create``: flags, the password prompt, and errors as one clean line."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result

import crm2_core.cli.commands  # noqa: F401  (registers the core commands on `cli`)
from crm2_core.cli.main import cli

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file `crm2 migrate` has brought to head (shared by this module's tests)."""
    folder = tmp_path_factory.mktemp("crm2-cli")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # no stray .env file can leak in
        result = CliRunner().invoke(cli, ["migrate"], env=_env(folder / "migrated.db"))
    assert result.exit_code == 0, result.output
    return folder / "migrated.db"


@pytest.fixture
def database(migrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the migrated database for one test."""
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "crm2.db"
    copy.write_bytes(migrated.read_bytes())
    return copy


def _env(database: Path) -> dict[str, str | None]:
    return {
        "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "CRM2_ENV": "development",
        "CRM2_REDIS_URL": None,
        "CRM2_AUTH_JWT_SECRET": None,
    }


def crm2(database: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=_env(database), input=input)


def user_row(database: Path, email: str) -> tuple[str, list[str]] | None:
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT id, password_hash FROM auth_user WHERE email = ?", (email,)
        ).fetchone()
        if row is None:
            return None
        roles = [
            r[0]
            for r in db.execute(
                "SELECT role_name FROM auth_user_role WHERE user_id = ? ORDER BY role_name",
                (row[0],),
            )
        ]
    return row[1], roles


def test_migrate_creates_the_auth_tables(migrated: Path) -> None:
    with sqlite3.connect(migrated) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"auth_user", "auth_role", "auth_api_key", "auth_refresh_token"} <= tables


def test_users_create_with_flags(database: Path) -> None:
    result = crm2(
        database,
        "users",
        "create",
        "--email",
        "Root@Example.com",
        "--password",
        PASSWORD,
        "--role",
        "admin",
    )
    assert result.exit_code == 0, result.output
    assert "root@example.com" in result.output.lower()
    row = user_row(database, "root@example.com")
    assert row is not None
    password_hash, roles = row
    assert roles == ["admin"]
    assert password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(password_hash, PASSWORD)


def test_users_create_with_several_roles(database: Path) -> None:
    result = crm2(
        database,
        "users",
        "create",
        "--email",
        "two@example.com",
        "--password",
        PASSWORD,
        "--role",
        "agent",
        "--role",
        "manager",
    )
    assert result.exit_code == 0, result.output
    row = user_row(database, "two@example.com")
    assert row is not None and row[1] == ["agent", "manager"]


def test_users_create_defaults_to_viewer(database: Path) -> None:
    result = crm2(database, "users", "create", "--email", "v@example.com", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    row = user_row(database, "v@example.com")
    assert row is not None and row[1] == ["viewer"]


def test_users_create_prompts_for_a_missing_password(database: Path) -> None:
    result = crm2(
        database,
        "users",
        "create",
        "--email",
        "asked@example.com",
        "--role",
        "admin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    row = user_row(database, "asked@example.com")
    assert row is not None
    assert PasswordHasher().verify(row[0], PASSWORD)


def test_users_create_prompt_repeats_until_confirmation_matches(database: Path) -> None:
    result = crm2(
        database,
        "users",
        "create",
        "--email",
        "typo@example.com",
        input=f"{PASSWORD}\nsomething else entirely\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output.lower()
    row = user_row(database, "typo@example.com")
    assert row is not None and PasswordHasher().verify(row[0], PASSWORD)


def test_users_create_refuses_a_duplicate_email(database: Path) -> None:
    args = ("users", "create", "--email", "dup@example.com", "--password", PASSWORD)
    assert crm2(database, *args).exit_code == 0
    result = crm2(database, *args)
    assert result.exit_code != 0
    assert "exists" in result.output
    assert "Traceback" not in result.output


def test_users_create_refuses_an_unknown_role(database: Path) -> None:
    result = crm2(
        database,
        "users",
        "create",
        "--email",
        "w@example.com",
        "--password",
        PASSWORD,
        "--role",
        "wizard",
    )
    assert result.exit_code != 0
    assert "wizard" in result.output
    assert user_row(database, "w@example.com") is None


def test_users_create_refuses_a_short_password(database: Path) -> None:
    result = crm2(database, "users", "create", "--email", "s@example.com", "--password", "short")
    assert result.exit_code != 0
    assert "password" in result.output
    assert user_row(database, "s@example.com") is None


# -- crm2 users unlock / set-password --------------------------------------------------------


def _failures(database: Path, email: str) -> int:
    with sqlite3.connect(database) as db:
        return int(
            db.execute(
                "SELECT count(*) FROM auth_login_failure WHERE account = ?", (email,)
            ).fetchone()[0]
        )


def test_unlock_forgets_the_accounts_failed_logins(database: Path) -> None:
    with sqlite3.connect(database) as db:
        for address in ("198.51.100.1", "198.51.100.2"):
            db.execute(
                "INSERT INTO auth_login_failure (account, address, failures, last_failure_at, "
                "blocked_until) VALUES (?, ?, 9, '2099-01-01 00:00:00.000000', "
                "'2099-01-01 00:00:00.000000')",
                ("locked@example.com", address),
            )
    result = crm2(database, "users", "unlock", "Locked@Example.com")
    assert result.exit_code == 0, result.output
    assert "unlocked locked@example.com (2 address(es)" in result.output
    assert _failures(database, "locked@example.com") == 0


def test_set_password_changes_it_and_ends_sessions(database: Path) -> None:
    assert (
        crm2(
            database, "users", "create", "--email", "reset@example.com", "--password", PASSWORD
        ).exit_code
        == 0
    )
    result = crm2(
        database,
        "users",
        "set-password",
        "reset@example.com",
        input="a brand new password\na brand new password\n",
    )
    assert result.exit_code == 0, result.output
    with sqlite3.connect(database) as db:
        password_hash, version = db.execute(
            "SELECT password_hash, credentials_version FROM auth_user WHERE email = ?",
            ("reset@example.com",),
        ).fetchone()
    assert PasswordHasher().verify(password_hash, "a brand new password")
    assert version == 2  # access tokens issued before stop working


def test_set_password_of_nobody_is_one_clean_line(database: Path) -> None:
    result = crm2(
        database, "users", "set-password", "ghost@example.com", "--password", "a brand new password"
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no user ghost@example.com"


def test_set_password_too_short_is_refused(database: Path) -> None:
    result = crm2(database, "users", "set-password", "x@example.com", "--password", "short")
    assert result.exit_code == 1
    assert "at least 10 characters" in result.output


def test_users_create_refuses_a_full_width_look_alike(database: Path) -> None:
    """ "admin@…" in full-width letters (U+FF41…) looks like it but is another string."""
    look_alike = "\uff41\uff44\uff4d\uff49\uff4e@example.com"
    args = ("users", "create", "--email", look_alike, "--password", PASSWORD)
    result = crm2(database, *args)
    assert result.exit_code != 0
    assert "admin@example.com" in result.output  # the form to write instead
    assert "Traceback" not in result.output
    assert user_row(database, look_alike) is None


def _live_keys(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT name FROM auth_api_key WHERE revoked_at IS NULL ORDER BY name")
        return [r[0] for r in rows.fetchall()]


def test_set_password_revokes_the_users_api_keys_only_when_asked(database: Path) -> None:
    for email in ("keys@example.com", "other@example.com"):
        made = crm2(database, "users", "create", "--email", email, "--password", PASSWORD)
        assert made.exit_code == 0, made.output
    with sqlite3.connect(database) as db:
        for name, email in (("mine", "keys@example.com"), ("theirs", "other@example.com")):
            db.execute(
                "INSERT INTO auth_api_key (id, name, prefix, key_hash, role_name, created_by, "
                "created_at) SELECT ?, ?, ?, ?, 'viewer', id, '2026-01-01 00:00:00.000000' "
                "FROM auth_user WHERE email = ?",
                (uuid.uuid4().hex, name, name, "0" * 64, email),
            )
    new = "a brand new password"
    kept = crm2(database, "users", "set-password", "keys@example.com", "--password", new)
    assert kept.exit_code == 0, kept.output
    assert _live_keys(database) == ["mine", "theirs"]

    result = crm2(
        database,
        "users",
        "set-password",
        "keys@example.com",
        "--password",
        new,
        "--revoke-api-keys",
    )

    assert result.exit_code == 0, result.output
    assert "API keys" in result.output
    assert _live_keys(database) == ["theirs"]


def test_users_create_refuses_a_mixed_script_look_alike(database: Path) -> None:
    """ "admin@…" written with a Cyrillic a (U+0430) reads as "admin" but is another address."""
    look_alike = "\u0430dmin@example.com"
    args = ("users", "create", "--email", look_alike, "--password", PASSWORD)
    result = crm2(database, *args)
    assert result.exit_code != 0
    assert "mixes Cyrillic and Latin letters" in result.output
    assert "Traceback" not in result.output
    assert user_row(database, look_alike) is None
