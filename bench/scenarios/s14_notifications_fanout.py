"""Scenario 14: one deals event fanned out to 1,000 recipients' feeds.

crm2: the notifications rules engine (``baselines/notif_fanout.py crm2``) applies one
``deals.deal.won`` to a rule for the 1,000 users of a role — rule lookup, recipients,
templates, preferences, 1,000 feed rows and their 1,000 outbox events, one commit.
Baseline: asyncpg ``executemany`` of the same 1,000 feed rows in one transaction.
Both in fresh processes, timed inside (start-up excluded), interleaved; the figure
is feed rows per second.
"""

from __future__ import annotations

import json
import subprocess

from harness import BASELINES, PYTHON, Crm2Env, Envs, Metric, Profile, log, rounds

from scenarios.deals_common import execute

RECIPIENTS = 1000
SCRIPT = str(BASELINES / "notif_fanout.py")


def _users(env: Crm2Env) -> None:
    execute(env.asyncpg_dsn, f"""
        INSERT INTO auth_role (name, description, builtin, created_at, updated_at, version)
        VALUES ('benchfan', '', false, now(), now(), 1) ON CONFLICT DO NOTHING;
        INSERT INTO auth_user (id, email, full_name, password_hash, is_active,
                               credentials_version, created_at, updated_at, version)
        SELECT gen_random_uuid(), 'fan' || g || '@bench.example', '', 'x', true, 1, now(), now(), 1
        FROM generate_series(1, {RECIPIENTS}) g ON CONFLICT DO NOTHING;
        INSERT INTO auth_user_role (user_id, role_name)
        SELECT id, 'benchfan' FROM auth_user WHERE email LIKE 'fan%@bench.example'
        ON CONFLICT DO NOTHING;
    """)  # fmt: skip


def _run(env: Crm2Env, side: str) -> float:
    done = subprocess.run([PYTHON, SCRIPT, side, "--dsn", env.asyncpg_dsn], env=env.env,
                          cwd=env.workdir, capture_output=True, text=True, timeout=300)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"notif_fanout {side} failed:\n{done.stderr[-2000:]}")
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


def scenario_14(envs: Envs, profile: Profile) -> list[Metric]:
    """Feed rows per second: the rules engine vs asyncpg executemany of the same rows."""
    env = envs.get("s14")
    _users(env)
    rate = Metric(f"14 one event to {RECIPIENTS:,} feeds", "feed rows/s", "rows/s", True)
    for number, measured in rounds(profile):
        crm2_s = _run(env, "crm2")
        raw_s = _run(env, "raw")
        log(f"s14 round {number}: crm2 {crm2_s:.3f} s, executemany {raw_s:.3f} s")
        if measured:
            rate.add(RECIPIENTS / crm2_s, RECIPIENTS / raw_s)
    execute(env.asyncpg_dsn, "DELETE FROM notifications_notification")
    return [rate]
