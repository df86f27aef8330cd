"""The benchmark scenarios, by the issue's numbers; each is ``(Envs, Profile) -> [Metric]``."""

from __future__ import annotations

from collections.abc import Callable

from harness import Crm2Env, Envs, Metric, Profile

from scenarios.s1_read import scenario_1, scenario_1c
from scenarios.s2_create import prepare as prepare_s2
from scenarios.s2_create import scenario_2
from scenarios.s3_list import large_env, scenario_3, scenario_3b
from scenarios.s4_events import events_env, scenario_4, scenario_4b
from scenarios.s5_sse_fanout import scenario_5
from scenarios.s6_sse_memory import scenario_6
from scenarios.s7_startup import route_count, scenario_7
from scenarios.s8_seed_load import scenario_8
from scenarios.s9_ratelimit import scenario_9
from scenarios.s10_tasks_mine import scenario_10, tasks_env
from scenarios.s11_import import scenario_11
from scenarios.s12_payments import scenario_12a, scenario_12b
from scenarios.s13_documents_files import scenario_13
from scenarios.s14_notifications_fanout import scenario_14
from scenarios.s15_backup import scenario_15
from scenarios.s16_template import scenario_16
from scenarios.s17_plugin_scaling import plugins_env, scenario_17

Scenario = Callable[[Envs, Profile], list[Metric]]
Preparation = Callable[[Envs, Profile], object]

SCENARIOS: dict[str, Scenario] = {
    "1": scenario_1,
    "1c": scenario_1c,
    "2": scenario_2,
    "3": scenario_3,
    "3b": scenario_3b,
    "4": scenario_4,
    "4b": scenario_4b,
    "5": scenario_5,
    "6": scenario_6,
    "7": scenario_7,
    "8": scenario_8,
    "9": scenario_9,
    "10": scenario_10,
    "11": scenario_11,
    "12a": scenario_12a,
    "12b": scenario_12b,
    "13": scenario_13,
    "14": scenario_14,
    "15": scenario_15,
    "16": scenario_16,
    "17": scenario_17,
}

# What ``--quick`` runs without ``--only``: the scenarios of the request path (reads,
# creates, lists, events, SSE, start-up, the template and plugin-count comparisons),
# small enough to run on every change that touches it. The data scenarios (3b's growth,
# 6's memory ramp, seed, rate limiter, import, payments exports, files, notifications,
# backup) spend their time on data sets and processes, not on the request path: the
# full run has them, and ``--quick --only 11`` runs one of them small.
QUICK: list[str] = ["1", "1c", "2", "3", "4", "4b", "5", "7", "10", "16", "17"]


def _main(envs: Envs, _profile: Profile) -> Crm2Env:
    return envs.get()


# The environments (migrated databases, seeded data sets) a scenario makes first, by the
# function it calls for them: run.py calls these for the chosen scenarios concurrently
# before the first scenario, so their migrations and seeding overlap instead of adding
# up; the scenario's own call then finds its environment made. No measurement runs
# meanwhile. A scenario missing here makes its environment when it runs.
PREPARE: dict[str, Preparation] = {
    "1": _main,
    "1c": _main,
    "2": prepare_s2,
    "3": large_env,
    "4": lambda envs, _profile: events_env(envs),
    "4b": lambda envs, _profile: events_env(envs),
    "5": lambda envs, _profile: envs.get("sse"),
    "7": route_count,  # builds crm2's app once to count its routes
    "10": tasks_env,
    "16": large_env,
    "17": plugins_env,
}
