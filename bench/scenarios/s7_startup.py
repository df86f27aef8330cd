"""Scenario 7: start-up to the first 200 on /healthz with every plugin enabled.

Baseline: a bare FastAPI app with the same number of routes, started the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from harness import BASELINES, HOST, PYTHON, Envs, Metric, Profile, Server, free_port, log, rounds

_ROUTES: list[int] = []  # crm2's route count, counted once per run


def route_count(envs: Envs, _profile: Profile | None = None) -> int:
    """The number of leaf routes of crm2's app with every plugin (a process building it)."""
    with envs.lock("s7 routes"):
        if not _ROUTES:
            _ROUTES.append(envs.get().route_count())
    return _ROUTES[0]


def scenario_7(envs: Envs, profile: Profile) -> list[Metric]:
    """Start-up to the first 200 on /healthz: crm2 serve vs bare FastAPI, same route count."""
    crm2 = envs.get()
    routes = route_count(envs)
    name = f"7 start-up ({routes} routes)"
    startup = Metric(name, "to first 200", "s", False, target_ratio=2.0, target_crm2_max=3.0)

    def bare(port: int) -> Server:
        cmd = [PYTHON, str(BASELINES / "bare_fastapi.py"), "--routes", str(routes),
               "--port", str(port)]  # fmt: skip
        return Server("bare_fastapi", cmd, dict(os.environ), crm2.workdir)

    makers: dict[str, Callable[[int], Server]] = {"crm2": crm2.serve, "baseline": bare}
    for number, measured in rounds(profile):
        got = {}
        for variant, make in makers.items():
            port = free_port()
            with make(port) as server:
                got[variant] = server.wait_ready(f"http://{HOST}:{port}/healthz")
            log(f"s7 round {number} {variant}: {got[variant]:.3f} s")
        if measured:
            startup.add(got["crm2"], got["baseline"])
    return [startup]
