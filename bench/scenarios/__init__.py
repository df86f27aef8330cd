"""The benchmark scenarios, by the issue's numbers; each is ``(Envs, Profile) -> [Metric]``."""

from __future__ import annotations

from collections.abc import Callable

from harness import Envs, Metric, Profile

from scenarios.s1_read import scenario_1
from scenarios.s4_events import scenario_4, scenario_4b
from scenarios.s7_startup import scenario_7

Scenario = Callable[[Envs, Profile], list[Metric]]

SCENARIOS: dict[str, Scenario] = {
    "1": scenario_1,
    "4": scenario_4,
    "4b": scenario_4b,
    "7": scenario_7,
}
