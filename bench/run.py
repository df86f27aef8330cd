"""crm2 benchmark harness: each scenario against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only 1,7]

For every scenario the crm2 variant and its baseline are measured interleaved
(A B A B …): one warm-up round, then the measured rounds. Each round gives a ratio
crm2 / baseline; the median with min and max is reported, with the absolute figures.
Results go to ``bench/results/<YYYY-MM-DD-HHMM>.json`` and a Markdown table to stdout.
Timings never fail the run: the exit status is non-zero only when something crashed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
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


FULL = Profile(rounds=5, warmup=1, closed_s=8.0, open_s=5.0, connections=32)
QUICK = Profile(rounds=2, warmup=1, closed_s=2.0, open_s=1.5, connections=32)


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


class Server:
    """A server process on 127.0.0.1, its output in a log file; always stopped."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.cmd, self.env, self.workdir = name, cmd, env, workdir
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

    def wait_ready(self, url: str, timeout: float = 30.0, interval: float = 0.005) -> float:
        """Poll ``url`` until it answers 200; the seconds since ``start()``."""
        deadline = time.perf_counter() + timeout
        with httpx.Client(timeout=1.0) as client:
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


def run_load(mode: str, url: str, duration: float, **opts: Any) -> dict[str, Any]:
    cmd = [PYTHON, LOAD, mode, "--url", url, "--duration", str(duration)]
    for key, value in opts.items():
        if key == "headers":
            for name, val in value.items():
                cmd += ["--header", f"{name}: {val}"]
        else:
            cmd += [f"--{key}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    return json.loads(done.stdout)


def measure_http(server: Server, mode: str, url: str, duration: float, **opts: Any) -> dict:
    before = cpu_seconds(server.pid)
    out = run_load(mode, url, duration, **opts)
    used = cpu_seconds(server.pid) - before
    out["server_cpu_s"] = used
    out["cpu_ms_per_req"] = used / out["ok"] * 1000 if out["ok"] else None
    return out


# -- the crm2 environment -------------------------------------------------------------


class Crm2Env:
    """A migrated SQLite database with one admin user, in a temporary directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
        env.update(
            CRM2_ENV="development",
            CRM2_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'crm2.db'}",
            CRM2_AUTH_JWT_SECRET=JWT_SECRET,
            CRM2_LOG_LEVEL="WARNING",
            CRM2_BROKER_URL="memory://",
            PYTHONDONTWRITEBYTECODE="1",
        )
        self.env = env
        self._ready = False

    def crm2(self, *args: str) -> str:
        done = subprocess.run(
            [CRM2, *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"crm2 {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def prepare(self) -> Crm2Env:
        if not self._ready:
            self.crm2("migrate")
            self.crm2(
                "users", "create", "--email", USER_EMAIL, "--password", USER_PASSWORD,
                "--role", "admin",
            )  # fmt: skip
            self._ready = True
        return self

    def serve(self, port: int) -> Server:
        return Server("crm2", [CRM2, "serve", "--host", HOST, "--port", str(port)], self.env,
                      self.workdir)  # fmt: skip

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


# -- results --------------------------------------------------------------------------


@dataclass
class Metric:
    scenario: str
    name: str
    unit: str
    higher_is_better: bool
    target_ratio: float | None = None  # >= when higher is better, else <=
    target_crm2_max: float | None = None  # absolute ceiling on crm2's median
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
        return " and ".join(parts) or "—"

    def met(self) -> bool | None:
        if self.target_ratio is None and self.target_crm2_max is None:
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


# -- scenario 1 -----------------------------------------------------------------------

S1_PATH = "/api/v1/auth/me"


def scenario_1(crm2: Crm2Env, profile: Profile) -> list[Metric]:
    """Authenticated GET of a small JSON resource vs bare Starlette with the same bytes."""
    name = "1 auth GET /auth/me"
    rps = Metric(name, "req/s", "req/s", True, target_ratio=0.55)
    cpu = Metric(name, "server CPU/req", "ms", False)
    p50 = Metric(name, "p50 closed-loop", "ms", False)
    p99 = Metric(name, "p99 open-loop", "ms", False)
    open_rate: float | None = None  # half crm2's warm-up req/s, so neither side saturates

    crm2.prepare()
    app_port = free_port()
    with crm2.serve(app_port) as app:
        app_url = f"http://{HOST}:{app_port}"
        app.wait_ready(f"{app_url}/healthz")
        token = httpx.post(
            f"{app_url}/api/v1/auth/login",
            json={"email": USER_EMAIL, "password": USER_PASSWORD},
            timeout=30,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{app_url}{S1_PATH}", headers=headers, timeout=10)
        me.raise_for_status()
        body_file = crm2.workdir / "s1-body.json"
        body_file.write_bytes(me.content)

        env = dict(os.environ, BENCH_BODY_FILE=str(body_file), BENCH_PATH=S1_PATH)
        port = free_port()
        cmd = [PYTHON, "-m", "uvicorn", "--app-dir", str(BASELINES), "bare_starlette:app",
               "--host", HOST, "--port", str(port), "--log-level", "warning"]  # fmt: skip
        with Server("bare_starlette", cmd, env, crm2.workdir) as bare:
            bare_url = f"http://{HOST}:{port}"
            bare.wait_ready(f"{bare_url}/healthz")
            if httpx.get(f"{bare_url}{S1_PATH}", timeout=10).content != me.content:
                raise RuntimeError("the baseline does not answer the same bytes")

            variants = {"crm2": (app, app_url), "baseline": (bare, bare_url)}
            for number, measured in rounds(profile):
                got: dict[str, dict[str, dict]] = {}
                for variant, (server, url) in variants.items():  # A B, every round
                    closed = measure_http(server, "closed", url + S1_PATH, profile.closed_s,
                                          connections=profile.connections, client="raw",
                                          headers=headers)  # fmt: skip
                    if open_rate is None:
                        open_rate = max(10.0, round(closed["rps"] * 0.5))
                        p99.name = f"p99 open-loop @{open_rate:g}/s"
                    opened = measure_http(server, "open", url + S1_PATH, profile.open_s,
                                          rate=open_rate, connections=64,
                                          client="httpx", headers=headers)  # fmt: skip
                    got[variant] = {"closed": closed, "open": opened}
                    log(f"s1 round {number} {variant}: {closed['rps']:.0f} req/s, "
                        f"errors {closed['errors'] + opened['errors']}")  # fmt: skip
                if not measured:
                    continue
                a, b = got["crm2"], got["baseline"]
                rps.add(a["closed"]["rps"], b["closed"]["rps"])
                cpu.add(a["closed"]["cpu_ms_per_req"], b["closed"]["cpu_ms_per_req"])
                p50.add(a["closed"]["latency"]["p50_ms"], b["closed"]["latency"]["p50_ms"])
                p99.add(a["open"]["latency"]["p99_ms"], b["open"]["latency"]["p99_ms"])
    return [rps, cpu, p50, p99]


# -- scenario 7 -----------------------------------------------------------------------


def scenario_7(crm2: Crm2Env, profile: Profile) -> list[Metric]:
    """Start-up to the first 200 on /healthz: crm2 serve vs bare FastAPI, same route count."""
    crm2.prepare()
    routes = crm2.route_count()
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


SCENARIOS: dict[str, Callable[[Crm2Env, Profile], list[Metric]]] = {
    "1": scenario_1,
    "7": scenario_7,
}


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="crm2 benchmarks (ratios vs baselines)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, short durations")
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. 1,7")
    parser.add_argument("--results-dir", default=str(BENCH / "results"))
    args = parser.parse_args(argv)

    profile = QUICK if args.quick else FULL
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SCENARIOS)
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; implemented: {', '.join(SCENARIOS)}")

    started = dt.datetime.now()
    metrics: list[Metric] = []
    errors: dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="crm2-bench-"))
    try:
        crm2 = Crm2Env(workdir)
        for key in wanted:
            log(f"scenario {key} ({'quick' if args.quick else 'full'})")
            try:
                metrics += SCENARIOS[key](crm2, profile)
            except Exception:  # record, keep going; the exit status reports it
                errors[key] = traceback.format_exc()
                log(f"scenario {key} crashed:\n{errors[key]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{started:%Y-%m-%d-%H%M}.json"
    out.write_text(
        json.dumps(
            {
                "started": started.isoformat(timespec="seconds"),
                "finished": dt.datetime.now().isoformat(timespec="seconds"),
                "quick": args.quick,
                "profile": profile.__dict__,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "metrics": [m.as_dict() for m in metrics],
                "errors": errors,
            },
            indent=2,
        )
        + "\n"
    )
    print(markdown(metrics, errors))
    print(f"\nresults: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
