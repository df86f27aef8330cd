"""Scenario 6: memory per idle SSE connection (RSS slope over 0 → 5,000 connections).

crm2: ``crm2 serve`` (one uvicorn worker, PostgreSQL) with idle subscribers on
``GET /api/v1/streams/deals`` (admin, bearer token). Baseline:
``baselines/bare_streaming.py``, a bare Starlette ``StreamingResponse`` sending an
opening message and then only heartbeats, under the same uvicorn.

Each round and variant starts a *fresh* server (freed memory is kept by the
allocator and reused, so a second ramp in the same process would look free),
opens and closes a few dozen connections to pay one-off costs (lazy imports,
database pool), then ramps up in steps with one subscriber process
(``bench/sse_clients.py idle``), reading the server's VmRSS after each step has
settled. The figure is the least-squares slope of RSS over the open connections.

Settings for the crm2 server, explicit: ``CRM2_SSE_MAX_CONNECTION_SECONDS=3600``
(the default; no stream ends during a ramp) and ``CRM2_SSE_HEARTBEAT_SECONDS=15``
(the default, and the baseline's heartbeat too). crm2 has no cap on the number of
connections, so nothing else needs raising; RLIMIT_NOFILE is lifted to the hard
limit for the servers and the client.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from harness import (
    BENCH,
    HOST,
    PYTHON,
    Envs,
    Metric,
    Profile,
    Server,
    free_port,
    log,
    rounds,
    uvicorn_app,
)  # fmt: skip

from scenarios.s5_sse_fanout import STREAM_PATH, raise_nofile_limit

CLIENTS = str(BENCH / "sse_clients.py")
SETTLE_S = 1.0
WARM_CONNECTIONS = 64


def rss_kb(pid: int) -> int:
    """Resident set size of one process, from /proc (kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def ramp(server: Server, url: str, steps: list[int], headers: list[str]) -> list[tuple[int, int]]:
    """Open connections step by step; (open connections, server RSS kB) after each step."""
    cmd = [PYTHON, CLIENTS, "idle", "--url", url, "--steps", ",".join(map(str, steps))]
    for h in headers:
        cmd += ["--header", h]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    samples = []
    try:
        for _ in steps:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"subscriber process failed (exit {proc.wait(timeout=30)})")
            opened = json.loads(line)["open"]
            time.sleep(SETTLE_S)
            samples.append((opened, rss_kb(server.pid)))
            proc.stdin.write("\n")
            proc.stdin.flush()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return samples


def scenario_6(envs: Envs, profile: Profile) -> list[Metric]:
    """RSS per idle SSE connection: crm2's stream vs a bare Starlette StreamingResponse."""
    raise_nofile_limit()
    top = 1000 if profile.quick else 5000
    steps = [top * i // 5 for i in range(6)]
    label = f"6 idle SSE memory (0 → {top:,} connections)"
    per_conn = Metric(label, "RSS per connection", "KB", False, target_ratio=2.0,
                      target_crm2_max=40.0)  # fmt: skip
    base_rss = Metric(label, "RSS at 0 connections", "MB", False)

    crm2 = envs.get("sse")
    crm2_settings = {"CRM2_SSE_MAX_CONNECTION_SECONDS": "3600", "CRM2_SSE_HEARTBEAT_SECONDS": "15"}
    token: list[str] = []

    def crm2_server(port: int) -> tuple[Server, str, list[str]]:
        server = crm2.serve(port, **crm2_settings).start()
        base = f"http://{HOST}:{port}"
        server.wait_ready(f"{base}/healthz")
        if not token:
            token.append(crm2.login(base))
        return server, base + STREAM_PATH, [f"Authorization: Bearer {token[0]}"]

    def bare_server(port: int) -> tuple[Server, str, list[str]]:
        server = uvicorn_app("bare_streaming", crm2.workdir, port).start()
        server.wait_ready(f"{server.url}/healthz")
        return server, f"{server.url}/stream", []

    makers: dict[str, Callable[[int], tuple[Server, str, list[str]]]] = {
        "crm2": crm2_server,
        "baseline": bare_server,
    }
    for number, measured in rounds(profile):
        got: dict[str, tuple[float, float]] = {}
        for variant, make in makers.items():
            server, url, headers = make(free_port())
            try:
                ramp(server, url, [WARM_CONNECTIONS], headers)  # one-off costs, then closed
                samples = ramp(server, url, steps, headers)
            finally:
                server.stop()
            kb = slope([float(n) for n, _ in samples], [float(r) for _, r in samples])
            got[variant] = (kb, samples[0][1] / 1024)
            log(f"s6 round {number} {variant}: {kb:.1f} KB/connection, RSS "
                + " ".join(f"{n}:{r / 1024:.0f}MB" for n, r in samples))  # fmt: skip
        if measured:
            per_conn.add(got["crm2"][0], got["baseline"][0])
            base_rss.add(got["crm2"][1], got["baseline"][1])
    return [per_conn, base_rss]
