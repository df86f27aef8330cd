"""Scenarios 4 and 4b: an event's commit → its handler done, through a real broker.

crm2 side, as production runs it: ``crm2 serve`` (whose relay forwards committed
events) and a separate ``crm2 worker`` (defaults: 1 process, 8 threads), both with
``CRM2_BROKER_URL`` set to RabbitMQ (4) or Redis (4b) and every other setting at its
default (``CRM2_RELAY_INTERVAL_SECONDS=1``). The bench process POSTs one event at a
time to the ``benchprobe`` plugin (``bench/plugins/benchprobe.py``), spaced by a
jittered gap (mean 40 ms) so that latency, not throughput, is measured. Latency =
the handler transaction's commit (in the worker) - the request's commit (in serve),
both stamped by ``after_commit`` listeners and collected through Redis lists.

Baselines (``bench/baselines/raw_pika.py``, ``raw_redis.py``): a publisher process
and a consumer process doing a raw publish-with-confirm → consume+ack (RabbitMQ) or
RPUSH → BLPOP (Redis) with the same gaps; latency = consumer stamp - publisher stamp.

"first after idle": after ``idle`` seconds without events, the latency of the next
one (one sample per round and variant).

The plugin is loaded the way an installed plugin is, through its ``crm2.plugins``
entry point, so ``crm2 serve``/``crm2 worker``/``crm2 migrate`` run unmodified: a
throw-away ``benchprobe-0.dist-info`` in the run's temporary directory plus
``bench/plugins`` on ``PYTHONPATH``. Nothing is installed into the venv and nothing
is written into the repository (bytecode writing is off in the crm2 environment).

Isolation and clean-up: queue names carry the run's ``CRM2_BROKER_QUEUE_PREFIX``
(RabbitMQ's management API, which per-run vhosts would need, is not enabled here);
the RabbitMQ queues of every installed plugin (``.DQ``/``.XQ`` too) and the Redis keys
created are deleted at the end.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import redis
from harness import (
    AMQP_URL,
    BASELINES,
    BENCH,
    CRM2,
    PYTHON,
    REDIS_URL,
    Crm2Env,
    Envs,
    Metric,
    Profile,
    Server,
    log,
    rounds,
    running,
)  # fmt: skip

PLUGIN = "benchprobe"
MEAN_GAP_MS = 40.0
COLLECT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Kind:
    """One broker: how crm2 reaches it and which raw client is its baseline."""

    key: str  # "4" / "4b"
    title: str
    broker_url: str
    baseline: str  # script in bench/baselines
    idle_target_ms: float | None = None


RABBITMQ = Kind("4", "RabbitMQ", AMQP_URL, "raw_pika.py")
REDIS = Kind("4b", "Redis", REDIS_URL, "raw_redis.py", idle_target_ms=150.0)


# -- set-up -------------------------------------------------------------------------


def plugin_pythonpath(workdir: Path) -> str:
    """A ``.dist-info`` declaring the benchprobe entry point, in ``workdir``; the PYTHONPATH."""
    site = workdir / "s4-site"
    info = site / f"{PLUGIN}-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: crm2-{PLUGIN}\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[crm2.plugins]\n{PLUGIN} = {PLUGIN}\n")
    parts = [str(site), str(BENCH / "plugins"), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def only_plugins() -> dict[str, str]:
    """``BENCH_S4_PLUGINS`` (e.g. ``benchprobe``): run 4/4b with only these plugins, to
    see the path without the other plugins' handlers of every event (diagnostic; the
    scenario's figures are with every installed plugin)."""
    chosen = os.environ.get("BENCH_S4_PLUGINS", "")
    if not chosen:
        return {}
    log(f"s4/4b with only the plugins {chosen} (BENCH_S4_PLUGINS)")
    return {"CRM2_PLUGINS": chosen}


def events_env(envs: Envs) -> Crm2Env:
    """The PostgreSQL crm2 environment shared by 4 and 4b, with benchprobe installed."""
    return envs.get(
        "events",
        PYTHONPATH=plugin_pythonpath(envs.workdir),
        BENCHPROBE_REDIS_URL=REDIS_URL,
        **only_plugins(),
    )


def installed_plugins() -> list[str]:
    """The names of the plugins installed in this environment (entry points)."""
    return [ep.name for ep in entry_points(group="crm2.plugins")]


def cleanup(kind: Kind, env: Crm2Env, results: redis.Redis) -> None:
    """Delete the queues / keys this scenario created (best effort, logged)."""
    prefix = env.env["CRM2_BROKER_QUEUE_PREFIX"]
    try:
        if kind is RABBITMQ:
            import pika

            connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            try:
                channel = connection.channel()
                # every plugin with handlers has a queue (and .DQ/.XQ): deleting a queue
                # that was never declared is a no-op in RabbitMQ
                queues = [f"{prefix}.{name}" for name in (*installed_plugins(), PLUGIN)]
                for queue in (*queues, f"{prefix}.raw"):
                    for suffix in ("", ".DQ", ".XQ"):
                        channel.queue_delete(queue=queue + suffix)
            finally:
                connection.close()
        patterns = [f"{prefix}-dramatiq*", env.env["CRM2_REDIS_PREFIX"] + f"s{kind.key}:*"]
        for pattern in patterns:
            keys = list(results.scan_iter(match=pattern, count=1000))
            if keys:
                results.delete(*keys)
    except Exception as exc:
        log(f"s{kind.key} clean-up failed: {exc}")


# -- measuring ----------------------------------------------------------------------


def gaps_ms(count: int, seed: int) -> list[float]:
    """``count`` gaps uniform in [0.5, 1.5] x the mean: spaced, but not in lock-step
    with any poller's period."""
    rng = random.Random(seed)
    return [round(MEAN_GAP_MS * rng.uniform(0.5, 1.5), 1) for _ in range(count)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def stamps(results: redis.Redis, key: str) -> dict[str, float]:
    out = {}
    for raw in results.lrange(key, 0, -1):
        parts = raw.decode().split()
        if len(parts) == 2:
            out[parts[0]] = float(parts[1])
    return out


def wait_stamps(results: redis.Redis, key: str, ids: list[str], what: str) -> dict[str, float]:
    """The stamps of ``ids`` in the list ``key``, waiting up to COLLECT_TIMEOUT_S for all."""
    deadline = time.monotonic() + COLLECT_TIMEOUT_S
    while True:
        got = stamps(results, key)
        missing = [i for i in ids if i not in got]
        if not missing:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {len(missing)} of {len(ids)} never arrived")
        time.sleep(0.05)


class Crm2Side:
    """POSTs events to crm2 serve; latencies from the commit and handled stamps."""

    def __init__(self, base_url: str, token: str, results: redis.Redis, key: str) -> None:
        self.url = f"{base_url}/api/v1/benchprobe/pings"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client = httpx.Client(timeout=30)
        self.results, self.key = results, key
        self.sent = 0

    def run(self, gaps: list[float]) -> list[float]:
        self.results.delete(f"{self.key}:committed", f"{self.key}:handled")
        ids = []
        for gap in gaps:
            time.sleep(gap / 1000)
            answer = self.client.post(self.url, json={"n": self.sent}, headers=self.headers)
            answer.raise_for_status()
            ids.append(answer.json()["event_id"])
            self.sent += 1
        committed = wait_stamps(self.results, f"{self.key}:committed", ids, "commit stamps")
        handled = wait_stamps(self.results, f"{self.key}:handled", ids, "handled stamps")
        return [(handled[i] - committed[i]) * 1000 for i in ids]


class BaselineSide:
    """Runs the raw publisher script; latencies from its send stamps and the consumer's."""

    def __init__(self, cmd: list[str], results: redis.Redis, key: str, consumer: Server) -> None:
        self.cmd, self.results, self.key, self.consumer = cmd, results, key, consumer
        self.ready = False

    def wait_ready(self) -> None:
        """Until the consumer has marked the results list ``ready`` (it consumes)."""
        deadline = time.monotonic() + 60
        while not self.ready:
            proc = self.consumer.proc
            if time.monotonic() > deadline or proc is None or proc.poll() is not None:
                raise RuntimeError(f"baseline consumer not ready:\n{self.consumer.log_tail()}")
            self.ready = self.results.lindex(self.key, 0) == b"ready"
            time.sleep(0 if self.ready else 0.02)

    def run(self, gaps: list[float]) -> list[float]:
        self.wait_ready()
        self.results.delete(self.key)
        gap_arg = ",".join(f"{g:g}" for g in gaps)
        done = subprocess.run(
            [*self.cmd, "publish", "--gaps-ms", gap_arg],
            capture_output=True, text=True, check=True, timeout=sum(gaps) / 1000 + 60,
        )  # fmt: skip
        sent = dict(json.loads(done.stdout))
        received = wait_stamps(self.results, self.key, list(sent), "baseline receipts")
        return [(received[i] - sent[i]) * 1000 for i in sent]


@contextmanager
def crm2_side(kind: Kind, env: Crm2Env, results: redis.Redis) -> Iterator[Crm2Side]:
    """crm2 serve + crm2 worker on ``kind``'s broker, primed with one handled event."""
    key = env.env["CRM2_REDIS_PREFIX"] + f"s{kind.key}:crm2"
    extra = {"CRM2_BROKER_URL": kind.broker_url, "BENCHPROBE_KEY": key}
    worker_env = dict(env.env, **extra)
    worker = Server(f"crm2-worker-s{kind.key}", [CRM2, "worker"], worker_env, env.workdir)
    with worker, running(env.serve(**extra)) as (app,):
        side = Crm2Side(app.url, env.login(app.url), results, key)
        try:
            side.run([0.0])  # the worker is up and consuming once this one is handled
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\nworker log:\n{worker.log_tail()}") from exc
        yield side


@contextmanager
def baseline_side(kind: Kind, env: Crm2Env, results: redis.Redis) -> Iterator[BaselineSide]:
    """The raw consumer process, started (its first run waits until it consumes);
    ``BaselineSide`` runs the publisher."""
    key = env.env["CRM2_REDIS_PREFIX"] + f"s{kind.key}:raw"
    cmd = [PYTHON, str(BASELINES / kind.baseline)]
    if kind is RABBITMQ:
        cmd += ["--url", AMQP_URL, "--queue", env.env["CRM2_BROKER_QUEUE_PREFIX"] + ".raw"]
    else:
        cmd += ["--queue", env.env["CRM2_REDIS_PREFIX"] + f"s{kind.key}:raw-queue"]
    cmd += ["--redis-url", REDIS_URL]
    results.delete(key)
    consumer_cmd = [*cmd, "consume", "--results-key", key]
    with Server(f"raw-consumer-s{kind.key}", consumer_cmd, dict(os.environ), env.workdir) as c:
        yield BaselineSide(cmd, results, key, c)


def scenario_events(kind: Kind, envs: Envs, profile: Profile) -> list[Metric]:
    """Interleaved rounds: crm2 batch + idle probe, then the baseline's, every round."""
    count = 30 if profile.quick else 200
    idle_s = 2.0 if profile.quick else 5.0
    label = f"{kind.key} event commit→handler, {kind.title}"
    p50 = Metric(label, "p50", "ms", False, target_ratio=3.0)
    p99 = Metric(label, "p99", "ms", False)
    idle = Metric(label, f"first after {idle_s:g} s idle", "ms", False,
                  target_crm2_max=kind.idle_target_ms)  # fmt: skip
    env = events_env(envs)
    results = redis.Redis.from_url(REDIS_URL)
    try:
        # the consumer starts first: its start-up overlaps crm2's
        with baseline_side(kind, env, results) as raw, crm2_side(kind, env, results) as crm2:
            for number, measured in rounds(profile):
                gaps = gaps_ms(count, seed=number)
                # a quick run's warm-up: a few events, no idle wait (nothing is measured)
                short = profile.quick and not measured
                gaps = gaps[:5] if short else gaps
                got: dict[str, tuple[list[float], float]] = {}
                for name, side in (("crm2", crm2), ("baseline", raw)):
                    batch = side.run(gaps)
                    after_idle = math.nan if short else side.run([idle_s * 1000])[0]
                    got[name] = (batch, after_idle)
                    log(f"s{kind.key} round {number} {name}: p50 {percentile(batch, 0.5):.2f} "
                        f"p99 {percentile(batch, 0.99):.2f} mean {statistics.mean(batch):.2f} "
                        f"max {max(batch):.2f} ms; after idle {after_idle:.2f} ms")  # fmt: skip
                if measured:
                    (a, a_idle), (b, b_idle) = got["crm2"], got["baseline"]
                    p50.add(percentile(a, 0.5), percentile(b, 0.5))
                    p99.add(percentile(a, 0.99), percentile(b, 0.99))
                    idle.add(a_idle, b_idle)
    finally:
        cleanup(kind, env, results)
        results.close()
    return [p50, p99, idle]


def scenario_4(envs: Envs, profile: Profile) -> list[Metric]:
    """Event commit → handler done on RabbitMQ vs raw pika publish-with-confirm → consume."""
    return scenario_events(RABBITMQ, envs, profile)


def scenario_4b(envs: Envs, profile: Profile) -> list[Metric]:
    """The same on Redis vs raw redis-py RPUSH → BLPOP; plus the first event after idle."""
    return scenario_events(REDIS, envs, profile)
