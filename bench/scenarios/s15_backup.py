"""Scenario 15: ``crm2 backup run --verify`` of a 1M-deal PostgreSQL database vs plain
``pg_dump -Fc`` + ``pg_restore`` of the same database.

crm2: one command, timed from spawn to exit: a consistent snapshot with row counts
and checksums of every table, ``pg_dump -Fc --snapshot``, AES-256-GCM encryption,
SHA-256 of both files, then the drill (decrypt, ``pg_restore`` into a scratch
database, the same counts and checksums there, drop). Baseline: ``pg_dump -Fc``
to a file, then ``createdb`` + ``pg_restore`` + ``dropdb``: a backup and a restore
with no encryption, no checks. Both run interleaved; the figure is seconds of wall
time (lower is better), and the ratio says what the proof costs.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from harness import CRM2, Crm2Env, Envs, Metric, Profile, log, pg_admin, rounds


def _timed(cmd: list[str], env: dict[str, str], cwd: object) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)  # type: ignore[arg-type]
    if done.returncode:
        raise RuntimeError(f"{cmd[:3]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def _baseline(env: Crm2Env) -> float:
    assert env.pg_name is not None
    dump = env.workdir / "s15-plain.dump"
    target = f"{env.pg_name}_plain"
    conn = ["-h", "127.0.0.1", "-U", "postgres"]
    started = time.perf_counter()
    subprocess.run(["pg_dump", "-Fc", *conn, "-d", env.pg_name, "-f", str(dump)], check=True)
    pg_admin(f'CREATE DATABASE "{target}"')
    try:
        subprocess.run(
            ["pg_restore", "--no-owner", "--no-privileges", *conn, "-d", target, str(dump)],
            check=True,
        )
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    seconds = time.perf_counter() - started
    dump.unlink(missing_ok=True)
    return seconds


def scenario_15(envs: Envs, profile: Profile) -> list[Metric]:
    """Backup + restore drill: crm2 backup run --verify vs plain pg_dump + pg_restore."""
    deals = 10_000 if profile.quick else 1_000_000
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        raise RuntimeError("scenario 15 needs pg_dump and pg_restore on PATH")
    if profile.quick:  # scenario 3b's small data set has the same rows: copied, not seeded
        from scenarios.deals_common import seeded_env
        from scenarios.s3_list import sizes

        assert sizes(profile)[0] == deals
        env = envs.copy("backup_large", seeded_env(envs, "deals_small", deals))
    else:
        env = envs.get("backup_large")
    backups = env.workdir / "s15-backups"
    env.env.update(
        CRM2_BACKUP_DIR=str(backups),
        CRM2_BACKUP_KEY_FILE=str(env.workdir / "s15-backup.key"),
        CRM2_BACKUP_TARGETS="postgres",
        CRM2_BACKUP_SCHEDULE="",
        CRM2_BACKUP_VERIFY_SCHEDULE="",
    )
    if not profile.quick:
        log(f"seeding backup_large: {deals:,} deals")
        env.crm2("deals", "seed-load", "--clients", str(max(1, deals // 10)),
                 "--deals", str(deals), timeout=3600)  # fmt: skip
    label = f"15 backup + drill, {deals:,} deals (PostgreSQL)"
    wall = Metric(label, "backup+verify wall", "s", False)
    for number, measured in rounds(profile):
        crm2_s = _timed([CRM2, "backup", "run", "--verify"], env.env, env.workdir)
        base_s = _baseline(env)
        shutil.rmtree(backups, ignore_errors=True)
        log(f"s15 round {number}: crm2 {crm2_s:.1f} s, pg_dump + pg_restore {base_s:.1f} s")
        if measured:
            wall.add(crm2_s, base_s)
    return [wall]
