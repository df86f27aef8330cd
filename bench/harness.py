"""Shared pieces of the benchmark harness: processes, load runs, the crm2 environment, metrics.

Scenario modules (``bench/scenarios/sN_*.py``) import from here; ``bench/run.py``
runs them. See bench/README.md.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = sys.executable
CRM2 = str(Path(PYTHON).with_name("crm2"))
LOAD = str(BENCH / "load.py")
BASELINES = BENCH / "baselines"
HOST = "127.0.0.1"
USER_EMAIL = "bench@example.com"
USER_PASSWORD = "Bench-password-0123456789"
JWT_SECRET = "bench-only-jwt-secret-0123456789abcdef"  # 32+ bytes, development only
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Profile:
    rounds: int
    warmup: int
    closed_s: float
    open_s: float
    connections: int
    quick: bool = False  # scenarios also shrink their data sets and counts
    open_client: str = "httpx"  # load.py's client for the open-loop (p99) runs


FULL = Profile(rounds=5, warmup=1, closed_s=8.0, open_s=5.0, connections=32)
# Short load runs: the quick run's time goes to process start-ups and data sets, not to
# the load itself (the "seconds" of a results file); 0.5 s still sends 100s of requests.
# Open-loop (p99) runs, only in measured rounds, keep 1 s: a p99 needs the samples.
# They use the raw client: httpx cannot hold 400 req/s on a loaded machine and would
# wait out its grace period on every p99 run (bench/README.md).
QUICK = Profile(rounds=2, warmup=1, closed_s=0.5, open_s=1.0, connections=32, quick=True,
                open_client="raw")  # fmt: skip


# -- where a run's wall time goes --------------------------------------------------

# Seconds of wall time per kind of step ("crm2 migrate", "server start", "load runs", …),
# summed over the run; run.py reports each scenario's share (what makes a run long).
# Steps of the parallel preparation (run.py) add up their threads' seconds.
SPENT: Counter[str] = Counter()
_SPENT_LOCK = threading.Lock()


@contextmanager
def spent(kind: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        with _SPENT_LOCK:
            SPENT[kind] += time.perf_counter() - started


# -- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (psutil is not a dependency)."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        data = Path(f"/proc/{pid}/stat").read_text()
        fields = data[data.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def pg_backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds (utime + stime) of each PostgreSQL backend connected to ``database``.

    Read from /proc (the bench's PostgreSQL runs on this machine); a backend's title is
    ``postgres: [cluster:] <user> <database> <client> <state>``. Background processes (WAL writer,
    checkpointer, autovacuum), shared with every other database, are not counted.
    """
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            words = title.split()
            # Debian's cluster name may stand first: "postgres: 15/main: <user> <database> …"
            if words[:1] == ["postgres:"] and database in words[1:4]:
                found[int(entry.name)] = cpu_seconds(int(entry.name))
        except (OSError, ProcessLookupError):
            continue  # ended meanwhile
        except Exception as exc:  # psutil.NoSuchProcess and the like
            if type(exc).__name__ not in ("NoSuchProcess", "AccessDenied", "ZombieProcess"):
                raise
    return found


def backend_cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends spent between two ``pg_backend_cpu`` readings: a backend
    that started meanwhile counts whole; one that ended meanwhile is lost (a pooled
    server keeps its connections, so that is rare)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def settle(
    read: Callable[[], tuple[int, Any]],
    timeout: float = 300.0,
    quiet: float = 1.5,
    poll: float = 0.25,
) -> bool:
    """Wait until ``read()`` says nothing waits and its reading stays the same ``quiet`` s.

    ``read`` returns ``(items still waiting, a reading of the work done)``: e.g. events
    not relayed yet, and the handlers' applied and dead-lettered counts. True once
    settled; False when ``timeout`` passed first (the caller goes on, and says so).
    """
    deadline = time.monotonic() + timeout
    last: Any = object()
    since = time.monotonic()
    while True:
        waiting, reading = read()
        now = time.monotonic()
        if waiting or reading != last:
            last, since = (None if waiting else reading), now
        elif now - since >= quiet:
            return True
        if now >= deadline:
            return False
        time.sleep(poll)


class Server:
    """A server process on 127.0.0.1, its output in a log file; always stopped."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], workdir: Path,
        port: int | None = None,
    ) -> None:  # fmt: skip
        self.name, self.cmd, self.env, self.workdir = name, cmd, env, workdir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}-{time.monotonic_ns()}.log"
        self.started_at = 0.0

    def start(self) -> Server:
        self.started_at = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for a server made with its port."""
        assert self.port is not None, f"{self.name} was made without a port"
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, url: str, timeout: float = 30.0, interval: float = 0.005) -> float:
        """Poll ``url`` until it answers 200; the seconds since ``start()``."""
        deadline = time.perf_counter() + timeout
        with spent("server start"), httpx.Client(timeout=1.0) as client:
            while time.perf_counter() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
                try:
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - self.started_at
                except httpx.HTTPError:
                    pass
                time.sleep(interval)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextmanager
def running(*servers: Server, timeout: float = 60.0) -> Iterator[tuple[Server, ...]]:
    """Start every server at once, then wait until each answers 200 on ``/healthz``.

    Their start-ups (seconds each on a loaded machine: imports) overlap instead of adding
    up. All are stopped at the end, also when one fails to start.
    """
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(f"{server.url}/healthz", timeout=timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


def uvicorn_app(module: str, workdir: Path, port: int | None = None, /, **env: str) -> Server:
    """``bench/baselines/<module>.py``'s ``app`` under one uvicorn worker on 127.0.0.1,
    with ``env`` added to this process's environment."""
    port = port or free_port()
    cmd = [PYTHON, "-m", "uvicorn", "--app-dir", str(BASELINES), f"{module}:app",
           "--host", HOST, "--port", str(port), "--log-level", "warning"]  # fmt: skip
    return Server(module, cmd, dict(os.environ, **env), workdir, port)


def run_load(mode: str, url: str, duration: float, **opts: Any) -> dict[str, Any]:
    cmd = [PYTHON, LOAD, mode, "--url", url, "--duration", str(duration)]
    for key, value in opts.items():
        if key == "headers":
            for name, val in value.items():
                cmd += ["--header", f"{name}: {val}"]
        else:
            cmd += [f"--{key}", str(value)]
    with spent("load runs"):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                              check=True)  # fmt: skip
    return json.loads(done.stdout)


def measure_http(server: Server, mode: str, url: str, duration: float, **opts: Any) -> dict:
    before = cpu_seconds(server.pid)
    out = run_load(mode, url, duration, **opts)
    used = cpu_seconds(server.pid) - before
    out["server_cpu_s"] = used
    out["cpu_ms_per_req"] = used / out["ok"] * 1000 if out["ok"] else None
    return out


def measure_open(
    server: Server, url: str, profile: Profile, measured: bool, rate: float, **opts: Any
) -> dict[str, Any]:
    """An open-loop run (p99) at ``rate`` req/s with 64 connections at most.

    None in a quick run's warm-up rounds (an empty result): the closed-loop run before it
    warmed the server, and an unmeasured p99 would only cost the quick run time.
    """
    if profile.quick and not measured:
        return {"ok": 0, "errors": 0, "latency": {"p99_ms": None}}
    return measure_http(server, "open", url, profile.open_s, rate=rate, connections=64,
                        client=profile.open_client, **opts)  # fmt: skip


# -- the crm2 environment -------------------------------------------------------------


PG_ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
RUN_ID = f"{os.getpid()}_{int(time.time())}"


def pg_dsn(database: str) -> str:
    """``BENCH_PG_DSN`` with another database name (asyncpg / psycopg style URL)."""
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{database}"


def pg_admin(sql: str) -> None:
    """One statement on the maintenance database (CREATE/DROP DATABASE), autocommit."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def create_from_template(name: str, template: str, attempts: int = 20) -> None:
    """``CREATE DATABASE name TEMPLATE template``, retried while the template's last
    session (a CLI process that just exited) is still being closed by the server."""
    import asyncpg

    for attempt in range(attempts):
        try:
            pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except asyncpg.ObjectInUseError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)


class Crm2Env:
    """One crm2 deployment for the benchmarks: a database migrated by ``crm2 migrate``
    with one admin user, settings in ``env``, and a temporary working directory.

    ``database="postgresql"`` (the default) creates ``crm2_bench_<run>_<name>`` on
    ``BENCH_PG_DSN`` and drops it in ``close()``; ``"sqlite"`` uses a file in ``workdir``.
    Redis keys are prefixed ``crm2bench:<run>:`` and broker queues ``crm2bench_<run>``,
    both removed by ``close()`` where the scenario used them.
    """

    def __init__(
        self, workdir: Path, name: str = "main", database: str = "postgresql",
        **settings: str,
    ) -> None:  # fmt: skip
        self.workdir = workdir
        self.name = name
        self.database = database
        self.pg_name = f"crm2_bench_{RUN_ID}_{name}" if database == "postgresql" else None
        if self.pg_name:
            url = "postgresql+asyncpg://" + pg_dsn(self.pg_name).split("://", 1)[1]
        else:
            url = f"sqlite+aiosqlite:///{workdir / f'crm2-{name}.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
        env.update(
            CRM2_ENV="development",
            CRM2_DATABASE_URL=url,
            CRM2_AUTH_JWT_SECRET=JWT_SECRET,
            CRM2_LOG_LEVEL="WARNING",
            CRM2_BROKER_URL="memory://",
            CRM2_REDIS_PREFIX=f"crm2bench:{RUN_ID}:{name}:",
            CRM2_BROKER_QUEUE_PREFIX=f"crm2bench_{RUN_ID}_{name}",
            # the SSE scenarios open thousands of streams with one admin's token
            CRM2_SSE_MAX_CONNECTIONS_PER_PRINCIPAL="0",
            CRM2_SSE_MAX_CONNECTIONS="0",
        )
        env.update(settings)
        self.env = env
        self.settings = settings
        self._ready = False
        self._created = False

    @property
    def asyncpg_dsn(self) -> str:
        assert self.pg_name, "not a PostgreSQL environment"
        return pg_dsn(self.pg_name)

    def crm2(self, *args: str, timeout: float = 120) -> str:
        with spent(f"crm2 {' '.join(a for a in args[:2] if not a.startswith('-'))}"):
            done = subprocess.run(
                [CRM2, *args],
                env=self.env,
                cwd=self.workdir,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        if done.returncode:
            raise RuntimeError(f"crm2 {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def prepare(self, template: str | None = None) -> Crm2Env:
        """Create, migrate and add the admin, or copy ``template`` (a database prepared so).

        ``CREATE DATABASE … TEMPLATE`` copies the files of a migrated database with its
        admin: the same database ``crm2 migrate`` + ``crm2 users create`` would leave, in
        a fraction of their time (two CLI start-ups, every migration, a password hash).
        """
        if not self._ready:
            if self.pg_name:
                pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_name}"')
                self._created = True  # dropped by close() even if migrate fails below
                if template:
                    with spent("copy a migrated database"):
                        create_from_template(self.pg_name, template)
                    self._ready = True
                    return self
                pg_admin(f'CREATE DATABASE "{self.pg_name}"')
            self.crm2("migrate")
            self.crm2(
                "users", "create", "--email", USER_EMAIL, "--password", USER_PASSWORD,
                "--role", "admin",
            )  # fmt: skip
            self._ready = True
        return self

    def close(self) -> None:
        if self.pg_name and (self._ready or self._created):
            pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        self._ready = self._created = False
        prefix = self.env["CRM2_REDIS_PREFIX"]
        try:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        except Exception as exc:  # Redis down: nothing of ours can be there either
            log(f"redis clean-up skipped: {exc}")

    def serve(self, port: int | None = None, /, **extra_env: str) -> Server:
        """``crm2 serve`` on ``port`` (a free one by default), not started."""
        port = port or free_port()
        env = dict(self.env, **extra_env)
        return Server(f"crm2-{self.name}", [CRM2, "serve", "--host", HOST, "--port", str(port)],
                      env, self.workdir, port)  # fmt: skip

    def login(self, base_url: str, email: str = USER_EMAIL, password: str = USER_PASSWORD) -> str:
        """An access token for ``email`` from the running server at ``base_url``."""
        answer = httpx.post(
            f"{base_url}/api/v1/auth/login",
            json={"email": email, "password": password},
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def bearer(self, base_url: str, email: str = USER_EMAIL, password: str = USER_PASSWORD,
               ) -> dict[str, str]:  # fmt: skip
        """The ``Authorization`` header of ``email`` (the admin by default), from ``login``."""
        return {"Authorization": f"Bearer {self.login(base_url, email, password)}"}

    @contextmanager
    def served(self, **extra_env: str) -> Iterator[tuple[Server, dict[str, str]]]:
        """``crm2 serve`` on a free port, ready, with the admin's bearer header; stopped
        at the end. The set-up most scenarios start with."""
        with running(self.serve(**extra_env)) as (app,):
            yield app, self.bearer(app.url)

    def route_count(self) -> int:
        code = (
            f"import sys; sys.path.insert(0, {str(BASELINES)!r});"
            "from bare_fastapi import count_routes;"
            "from crm2_core.http.app import create_app;"
            "print(count_routes(create_app().routes))"
        )
        done = subprocess.run([PYTHON, "-c", code], env=self.env, cwd=self.workdir,
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return int(done.stdout.strip().splitlines()[-1])


class Envs:
    """The crm2 environments of one run, made on first use and all closed at the end.

    PostgreSQL environments with the same settings are copies of one migrated database
    (``Crm2Env.prepare(template=…)``), never served itself, so it can always be copied.
    Thread-safe: run.py prepares the chosen scenarios' environments concurrently.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._made: dict[str, Crm2Env] = {}
        self._templates: dict[tuple[tuple[str, str], ...], Crm2Env] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def lock(self, name: str) -> threading.Lock:
        """The lock of ``name``: a set-up step that concurrent preparations may both
        reach (making an environment, seeding it) runs under it, and only once."""
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def get(self, name: str = "main", database: str = "postgresql", **settings: str) -> Crm2Env:
        with self.lock(f"env {name}"):
            if name not in self._made:
                self._made[name] = Crm2Env(self.workdir, name, database, **settings)
            env = self._made[name]
            if database != "postgresql" or env._ready:
                return env.prepare()
            key = tuple(sorted(settings.items()))
            with self._guard:
                if key not in self._templates:
                    number = len(self._templates)
                    self._templates[key] = Crm2Env(self.workdir, f"tpl{number}", database,
                                                   **settings)  # fmt: skip
                template = self._templates[key]
            with self.lock(f"env {template.name}"):
                if not template._ready:
                    template.prepare()
            return env.prepare(template=template.pg_name)

    def copy(self, name: str, source: Crm2Env) -> Crm2Env:
        """Environment ``name``: a copy of ``source``'s database (its data included), made
        while nothing is connected to ``source`` (between scenarios)."""
        with self.lock(f"env {name}"):
            if name not in self._made:
                self._made[name] = Crm2Env(self.workdir, name, source.database,
                                           **source.settings)  # fmt: skip
            return self._made[name].prepare(template=source.pg_name)

    def close(self) -> None:
        """Drop every database side by side: each DROP DATABASE waits for a checkpoint,
        and concurrent drops share one (one after the other, ~3 s each on a loaded
        machine, they took a minute of the quick run)."""

        def close(env: Crm2Env) -> None:
            try:
                env.close()
            except Exception as exc:
                log(f"clean-up of {env.name} failed: {exc}")

        envs = [*self._made.values(), *self._templates.values()]
        if envs:
            with spent("drop databases"), ThreadPoolExecutor(max_workers=min(8, len(envs))) as pool:
                list(pool.map(close, envs))


# -- results --------------------------------------------------------------------------


@dataclass
class Metric:
    scenario: str
    name: str
    unit: str
    higher_is_better: bool
    target_ratio: float | None = None  # >= when higher is better, else <=
    target_crm2_max: float | None = None  # absolute ceiling on crm2's median
    target_crm2_min: float | None = None  # absolute floor on crm2's median
    crm2: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    def add(self, crm2: float | None, baseline: float | None) -> None:
        if crm2 is not None and baseline is not None:
            self.crm2.append(crm2)
            self.baseline.append(baseline)

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.crm2, self.baseline, strict=True) if b]

    def target_text(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f"{'≥' if self.higher_is_better else '≤'} {self.target_ratio:g}x")
        if self.target_crm2_max is not None:
            parts.append(f"≤ {self.target_crm2_max:g} {self.unit}")
        if self.target_crm2_min is not None:
            parts.append(f"≥ {self.target_crm2_min:g} {self.unit}")
        return " and ".join(parts) or "—"

    def met(self) -> bool | None:
        if (
            self.target_ratio is None
            and self.target_crm2_max is None
            and self.target_crm2_min is None
        ):
            return None
        if not self.ratios:
            return False
        ratio = statistics.median(self.ratios)
        ok = True
        if self.target_ratio is not None:
            if self.higher_is_better:
                ok &= ratio >= self.target_ratio
            else:
                ok &= ratio <= self.target_ratio
        if self.target_crm2_max is not None:
            ok &= statistics.median(self.crm2) <= self.target_crm2_max
        if self.target_crm2_min is not None:
            ok &= statistics.median(self.crm2) >= self.target_crm2_min
        return ok

    def as_dict(self) -> dict[str, Any]:
        r = self.ratios
        return {
            "scenario": self.scenario,
            "metric": self.name,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "crm2": self.crm2,
            "baseline": self.baseline,
            "ratios": r,
            "crm2_median": statistics.median(self.crm2) if self.crm2 else None,
            "baseline_median": statistics.median(self.baseline) if self.baseline else None,
            "ratio_median": statistics.median(r) if r else None,
            "ratio_min": min(r) if r else None,
            "ratio_max": max(r) if r else None,
            "target": self.target_text(),
            "met": self.met(),
        }


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def markdown(metrics: list[Metric], errors: dict[str, str]) -> str:
    rows = [
        "| scenario | metric | crm2 | baseline | ratio median [min-max] | target | met? |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for m in metrics:
        d = m.as_dict()
        ratio = (
            f"{d['ratio_median']:.2f} [{d['ratio_min']:.2f}-{d['ratio_max']:.2f}]"
            if d["ratio_median"] is not None
            else "—"
        )
        met = {True: "yes", False: "**no**", None: "—"}[d["met"]]
        rows.append(
            f"| {m.scenario} | {m.name} ({m.unit}) | {_fmt(d['crm2_median'])} | "
            f"{_fmt(d['baseline_median'])} | {ratio} | {d['target']} | {met} |"
        )
    for scenario, error in errors.items():
        rows.append(f"| {scenario} | crashed: {error.splitlines()[-1][:80]} | | | | | |")
    return "\n".join(rows)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rounds(profile: Profile) -> list[tuple[int, bool]]:
    """(round number, measured?) — warm-up rounds first."""
    total = profile.warmup + profile.rounds
    return [(i, i >= profile.warmup) for i in range(total)]
