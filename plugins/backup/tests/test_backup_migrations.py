"""The plugin's migrations with only the core and backup (round-trip, no drift), and ``crm2 backup
run && crm2 backup verify`` on that fresh database, through the command line as an operator runs
them, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from backup_kit import KEY
from crm2_backup import crypto

from crm2_core.testing import PluginMigrations, TestDatabase


def test_round_trip_no_drift_then_run_and_verify(
    crm2_fresh_database: TestDatabase, tmp_path: Path
) -> None:
    env = {
        "CRM2_BACKUP_DIR": str(tmp_path / "backups"),
        "CRM2_BACKUP_KEY": crypto.encode_key(KEY),
        "CRM2_BACKUP_TARGETS": "auto",
    }
    check = PluginMigrations("backup", crm2_fresh_database, env=env)
    created = check.assert_round_trip_and_no_drift()
    assert created == {"backup_set", "backup_artifact", "backup_run", "backup_drill"}

    ran = check.crm2("backup", "run")
    verified = check.crm2("backup", "verify")
    listed = check.crm2("backup", "list")

    assert "completed" in ran and ": ok; RTO" in verified and "drill ok" in listed
    refused = check.crm2(
        "backup", "restore", listed.split()[0], "--target", "nope", "--to", "x", code=1
    )
    assert "No such backup target" in refused or "no 'nope' artefact" in refused
