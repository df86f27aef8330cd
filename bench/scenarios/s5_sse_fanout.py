"""Scenario 5: SSE fan-out of committed events to 1,000 subscribers on one process.

crm2: ``crm2 serve`` (one uvicorn worker, PostgreSQL, in-process broker) with the
subscribers on ``GET /api/v1/streams/deals`` as an admin (the channel's record
filter lets an admin see every event, so every subscriber gets every event). An
event is committed by ``POST /api/v1/deals/deals`` (validate, insert, outbox row,
commit; the relay then hands it to the stream hub).

Baseline: ``baselines/sse_raw.py``, a raw asyncio server whose ``POST /publish``
writes the exact event message crm2 sent (captured first, same bytes) to every
open socket.

The subscribers are one separate process (``bench/sse_clients.py``) opening every
connection anew each round. Per round and variant: ``events`` triggers one at a
time (trigger sent → last subscriber's receipt: latency, which for crm2 includes
creating the deal), then ``events`` triggers back to back (deliveries/s over the
whole burst), and the server's CPU time per delivery over both phases.
Heartbeats are set to 300 s for the crm2 server (``CRM2_SSE_HEARTBEAT_SECONDS``) so
that none falls inside a measurement; the client counts them to check.

Caveat: at 1,000 subscribers the one client process needs about 20 µs of CPU per
delivery (it logs its CPU seconds), more than the raw baseline server (about
6 µs), so the baseline's deliveries/s is capped by the client and crm2's ratio
is flattered. The server CPU/delivery metric does not depend on the client: read
it alongside.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
from typing import Any

import httpx
from harness import (
    BASELINES,
    BENCH,
    PYTHON,
    Crm2Env,
    Envs,
    Metric,
    Profile,
    Server,
    cpu_seconds,
    free_port,
    log,
    rounds,
    running,
)  # fmt: skip

CLIENTS = str(BENCH / "sse_clients.py")
STREAM_PATH = "/api/v1/streams/deals"
DEALS_PATH = "/api/v1/deals/deals"
EVENT_MARKER = b"event: deals.deal.created"
SEP = b"\r\n\r\n"


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard one; the servers started from here inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def deal_body(base_url: str, headers: dict[str, str]) -> str:
    """A valid deal-creation body: makes one client to attach the deals to."""
    made = httpx.post(f"{base_url}/api/v1/deals/clients", headers=headers, timeout=30,
                      json={"kind": "company", "name": "Fan-out bench"})  # fmt: skip
    made.raise_for_status()
    return json.dumps({"title": "Fan-out bench deal", "client_id": made.json()["id"],
                       "value": "1234.50"})  # fmt: skip


def capture_messages(base_url: str, headers: dict[str, str], body: str) -> tuple[bytes, bytes]:
    """The opening message and one deal-created message, as crm2's stream sent them."""
    buf = b""
    post_headers = {**headers, "Content-Type": "application/json"}
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", base_url + STREAM_PATH, headers=headers) as stream,
    ):
        chunks = stream.iter_raw()
        while b"event: connected" not in buf or not buf.endswith(SEP):
            buf += next(chunks)
        opening = buf
        httpx.post(base_url + DEALS_PATH, headers=post_headers, content=body, timeout=30,
                   ).raise_for_status()  # fmt: skip
        while EVENT_MARKER not in buf or not buf.endswith(SEP):
            buf += next(chunks)
    event = next(m for m in buf.split(SEP) if EVENT_MARKER in m) + SEP
    return opening, event


def run_clients(
    server: Server, url: str, subscribers: int, events: int,
    headers: list[str], trigger_url: str, trigger_body: str,
) -> dict[str, Any]:  # fmt: skip
    """One subscriber process: open, then both phases; adds the server's CPU per delivery."""
    cmd = [PYTHON, CLIENTS, "fanout", "--url", url, "--subscribers", str(subscribers),
           "--events", str(events), "--trigger-url", trigger_url,
           "--trigger-body", trigger_body]  # fmt: skip
    for h in headers:
        cmd += ["--header", h, "--trigger-header", h]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = proc.stdout.readline()
        if not ready:
            raise RuntimeError(f"subscribers failed to open (exit {proc.wait(timeout=30)})")
        before = cpu_seconds(server.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        used = cpu_seconds(server.pid) - before
        if proc.wait(timeout=60) or not line:
            raise RuntimeError(f"subscriber process failed (exit {proc.returncode})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out: dict[str, Any] = json.loads(line)
    out["server_us_per_delivery"] = used / (2 * events * out["subscribers"]) * 1e6
    return out


def baseline_server(crm2: Crm2Env, opening: bytes, event: bytes, port: int) -> Server:
    """``sse_raw.py`` on ``port``, serving the captured opening and event messages."""
    opening_file, event_file = crm2.workdir / "s5-opening.sse", crm2.workdir / "s5-event.sse"
    opening_file.write_bytes(opening)
    event_file.write_bytes(event)
    env = dict(os.environ, BENCH_OPENING_FILE=str(opening_file), BENCH_EVENT_FILE=str(event_file))
    cmd = [PYTHON, str(BASELINES / "sse_raw.py"), "--port", str(port)]
    return Server("sse_raw", cmd, env, crm2.workdir, port)


def scenario_5(envs: Envs, profile: Profile) -> list[Metric]:
    """SSE fan-out: deliveries/s and trigger → last delivery, crm2 vs a raw asyncio server."""
    raise_nofile_limit()
    subscribers, events = (200, 5) if profile.quick else (1000, 20)
    label = f"5 SSE fan-out ({subscribers} subscribers, {events}+{events} events)"
    rate = Metric(label, "deliveries/s, burst", "deliveries/s", True, target_ratio=0.4)
    latency = Metric(label, "trigger → last delivery p50", "ms", False)
    cpu = Metric(label, "server CPU/delivery", "µs", False)

    crm2 = envs.get("sse")
    with crm2.served(CRM2_SSE_HEARTBEAT_SECONDS="300") as (app, auth):
        app_url = app.url
        body = deal_body(app_url, auth)
        opening, event = capture_messages(app_url, auth, body)
        log(f"s5 event message: {len(event)} bytes")
        with running(baseline_server(crm2, opening, event, free_port())) as (bare,):
            bare_url = bare.url
            variants = {
                "crm2": (app, app_url + STREAM_PATH, app_url + DEALS_PATH, body,
                         [f"Authorization: {auth['Authorization']}"]),
                "baseline": (bare, bare_url + "/stream", bare_url + "/publish", "{}", []),
            }  # fmt: skip
            for number, measured in rounds(profile):
                got = {}
                for variant, (server, url, trigger, trigger_body, hdrs) in variants.items():
                    got[variant] = out = run_clients(server, url, subscribers, events, hdrs,
                                                     trigger, trigger_body)  # fmt: skip
                    log(f"s5 round {number} {variant}: {out['deliveries_per_s']:,.0f} "
                        f"deliveries/s, p50 {statistics.median(out['latency_s']) * 1e3:.1f} ms, "
                        f"{out['server_us_per_delivery']:.1f} µs CPU/delivery, client CPU "
                        f"{out['client_cpu_s']:.2f} s, pings {out['pings_during']}")  # fmt: skip
                if measured:
                    a, b = got["crm2"], got["baseline"]
                    rate.add(a["deliveries_per_s"], b["deliveries_per_s"])
                    latency.add(statistics.median(a["latency_s"]) * 1e3,
                                statistics.median(b["latency_s"]) * 1e3)  # fmt: skip
                    cpu.add(a["server_us_per_delivery"], b["server_us_per_delivery"])
    return [rate, latency, cpu]
