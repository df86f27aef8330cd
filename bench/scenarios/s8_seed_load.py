"""Scenario 8: ``crm2 seed load`` of 100k deals vs asyncpg ``copy_records_to_table``.

crm2: the ``crm2 seed load`` command (sized by CRM2_SEED_CLIENTS / CRM2_SEED_DEALS:
one client per ten deals), timed from spawn to exit, so its start-up (plugins,
settings, permissions sync) is part of its cost, as it is for a user.
Baseline: ``baselines/copy_deals.py``, a plain asyncpg script that generates rows of
the same shape and COPYs them (clients, their e-mail rows, deals), also timed from
spawn to exit. Both run interleaved, each into freshly truncated tables, and the
figure is deals per second of wall time. Informative: crm2's deals/s against the
time the baseline spent inside the COPY calls alone (rows already generated).
"""

from __future__ import annotations

import json
import subprocess
import time

from harness import BASELINES, CRM2, PYTHON, Crm2Env, Envs, Metric, Profile, log, rounds

from scenarios.deals_common import execute, sql

TRUNCATE = "TRUNCATE deals_client, deals_client_email, deals_deal CASCADE"


def _timed(cmd: list[str], env: Crm2Env, extra: dict[str, str]) -> tuple[float, str]:
    """Seconds from spawn to exit of ``cmd`` (which must succeed) and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(cmd, env=dict(env.env, **extra), cwd=env.workdir,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{cmd[:3]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _check_count(env: Crm2Env, deals: int) -> None:
    count = int(sql(env.asyncpg_dsn, "SELECT count(*) AS n FROM deals_deal")[0]["n"])
    if count != deals:
        raise RuntimeError(f"{count} deals in the table after the load, not {deals}")


def scenario_8(envs: Envs, profile: Profile) -> list[Metric]:
    """Deals per second: ``crm2 seed load`` vs a bare asyncpg COPY of the same rows."""
    deals = 10_000 if profile.quick else 100_000
    clients = deals // 10
    env = envs.get("s8")
    label = f"8 seed load {deals:,} deals (+{clients:,} clients)"
    rate = Metric(label, "deals/s (wall)", "deals/s", True, target_ratio=0.3)
    vs_copy = Metric(label, "deals/s vs COPY calls alone", "deals/s", True)
    crm2_cmd = [CRM2, "seed", "load"]
    crm2_env = {"CRM2_SEED_CLIENTS": str(clients), "CRM2_SEED_DEALS": str(deals)}
    copy_cmd = [PYTHON, str(BASELINES / "copy_deals.py"), "--dsn", env.asyncpg_dsn,
                "--clients", str(clients), "--deals", str(deals)]  # fmt: skip
    for number, measured in rounds(profile):
        execute(env.asyncpg_dsn, TRUNCATE)
        crm2_s, _ = _timed(crm2_cmd, env, crm2_env)
        _check_count(env, deals)
        execute(env.asyncpg_dsn, TRUNCATE)
        copy_s, out = _timed(copy_cmd, env, {})
        _check_count(env, deals)
        inner = json.loads(out)
        after, in_copy = inner["seconds"], inner["copy_seconds"]
        log(f"s8 round {number}: crm2 {crm2_s:.2f} s, baseline {copy_s:.2f} s "
            f"({after:.2f} s after connecting, {in_copy:.2f} s in COPY)")  # fmt: skip
        if measured:
            rate.add(deals / crm2_s, deals / copy_s)
            vs_copy.add(deals / crm2_s, deals / inner["copy_seconds"])
    execute(env.asyncpg_dsn, TRUNCATE)
    return [rate, vs_copy]
