"""Scenario 10: "my open tasks, 50 per page" with 1M tasks, crm2 vs raw asyncpg.

``GET /api/v1/tasks/views/mine?limit=50`` as an agent (``task-agent-001``, one of
200 agents sharing the table, so ~3,750 open tasks of their own; quick: 50k tasks for 10
agents, the same per agent): the view agents
live in all day. The data set comes from ``crm2 tasks seed-load`` (the generator of
``crm2 seed load``); the baseline (``raw_asyncpg_tasks.py``) sends the same SQL
through asyncpg behind bare Starlette and must return the same tasks.
"""

from __future__ import annotations

from harness import Crm2Env, Envs, Metric, Profile, log, measure_http, running, uvicorn_app
from harness import rounds as profile_rounds

from scenarios.deals_common import execute, sql
from scenarios.s3_list import fetch_page

MINE_PATH = "/api/v1/tasks/views/mine?limit=50"
AGENT_EMAIL = "task-agent-001@example.com"
AGENT_PASSWORD = "bench-task-agent-password"
AGENTS = 200
# Quick: 10 agents share 50k tasks, so the agent has as many tasks of their own as in the
# full run (5,000), and the seed hashes 10 agent passwords instead of 200 (half its time)
QUICK_AGENTS = 10
_SEEDED: list[str] = []  # tasks_large, once seeded


def size(profile: Profile) -> int:
    return 50_000 if profile.quick else 1_000_000


def agents(profile: Profile) -> int:
    return QUICK_AGENTS if profile.quick else AGENTS


def tasks_env(envs: Envs, profile: Profile) -> Crm2Env:
    """``tasks_large``: ``size(profile)`` tasks for ``agents(profile)`` agents, seeded once."""
    env = envs.get("tasks_large")
    with envs.lock("seed tasks_large"):
        if not _SEEDED:
            log(f"seeding tasks_large: {size(profile):,} tasks for {agents(profile)} agents")
            env.crm2("tasks", "seed-load", "--tasks", str(size(profile)), "--agents",
                     str(agents(profile)), "--password", AGENT_PASSWORD,
                     timeout=3600)  # fmt: skip
            execute(env.asyncpg_dsn, "VACUUM ANALYZE tasks_task")
            _SEEDED.append(env.name)
    return env


def scenario_10(envs: Envs, profile: Profile) -> list[Metric]:
    """Page 1 of an agent's open tasks by due date at 1M tasks: crm2 vs raw asyncpg."""
    tasks = size(profile)
    env = tasks_env(envs, profile)
    (agent,) = sql(env.asyncpg_dsn, "SELECT id FROM auth_user WHERE email = $1", AGENT_EMAIL)
    label = f"10 my open tasks, 50 per page, {tasks:,} tasks"
    rps = Metric(label, "req/s", "req/s", True, target_ratio=0.35)
    cpu = Metric(label, "server CPU/req", "ms", False)
    p50 = Metric(label, "p50 closed-loop", "ms", False)
    baseline = uvicorn_app("raw_asyncpg_tasks", env.workdir, BENCH_DSN=env.asyncpg_dsn,
                           BENCH_USER_ID=str(agent["id"]))  # fmt: skip
    with running(env.serve(), baseline) as (app, bare):
        app_url, bare_url = app.url, bare.url
        headers = env.bearer(app_url, AGENT_EMAIL, AGENT_PASSWORD)
        crm2_page = fetch_page(app_url + MINE_PATH, headers)
        bare_page = fetch_page(bare_url + MINE_PATH)
        ids = [t["id"] for t in crm2_page["items"]]
        if ids != [str(t["id"]) for t in bare_page["items"]] or len(ids) != 50:
            raise RuntimeError("the baseline does not return the tasks crm2 returns")
        variants = {"crm2": (app, app_url + MINE_PATH), "baseline": (bare, bare_url + MINE_PATH)}
        for number, measured in profile_rounds(profile):
            got = {}
            for variant, (server, url) in variants.items():
                got[variant] = out = measure_http(server, "closed", url, profile.closed_s,
                                                  connections=profile.connections,
                                                  client="raw", headers=headers)  # fmt: skip
                cpu_ms = out["cpu_ms_per_req"] or 0
                log(f"s10 round {number} {variant}: {out['rps']:.0f} req/s, "
                    f"{cpu_ms:.2f} ms CPU/req, errors {out['errors']}")  # fmt: skip
            if measured:
                a, b = got["crm2"], got["baseline"]
                rps.add(a["rps"], b["rps"])
                cpu.add(a["cpu_ms_per_req"], b["cpu_ms_per_req"])
                p50.add(a["latency"]["p50_ms"], b["latency"]["p50_ms"])
    return [rps, cpu, p50]
