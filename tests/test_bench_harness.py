"""The benchmark suite's own arithmetic and wiring (no timings: bench/ is not a test).

Running the scenarios takes minutes and real services (``python3 dev.py bench --quick``);
this keeps what can rot silently — imports, the scenario list, ratios, percentiles —
checked on every test run.
"""

from __future__ import annotations

import http.server
import importlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
# 10: the tasks plugin's "my open tasks" list (issue 11)
ISSUE_SCENARIOS = [
    "1",
    "1c",  # 1b with an API key: its row cached vs read per request (issue 9)
    "2",
    "3",
    "3b",
    "4",
    "4b",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "11",
    "12a",
    "12b",
    "13",
    "14",
    "15",
    "16",  # crm2 vs a FastAPI-full-stack-template-style app, create + list (issue 17)
    "17",  # one plugin's GET with 1, 6 and 12 plugins enabled (issue 17)
]


@pytest.fixture(scope="module")
def bench_modules() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name) for name in ("harness", "load", "scenarios")}
    finally:
        sys.path.remove(str(BENCH))


def test_every_scenario_of_the_issue_is_registered_in_order(bench_modules: dict) -> None:
    assert list(bench_modules["scenarios"].SCENARIOS) == ISSUE_SCENARIOS


def test_metric_reports_the_median_ratio_with_min_and_max(bench_modules: dict) -> None:
    metric = bench_modules["harness"].Metric("1", "req/s", "req/s", True, target_ratio=0.5)
    for crm2, baseline in [(50, 100), (60, 100), (30, 100)]:
        metric.add(crm2, baseline)
    metric.add(None, 100)  # a round without a reading is left out, not counted as 0
    report = metric.as_dict()
    assert report["ratios"] == [0.5, 0.6, 0.3]
    assert (report["ratio_median"], report["ratio_min"], report["ratio_max"]) == (0.5, 0.3, 0.6)
    assert report["met"] is True


def test_lower_is_better_targets_and_absolute_bounds(bench_modules: dict) -> None:
    metric = bench_modules["harness"].Metric(
        "7", "start-up", "s", False, target_ratio=2.0, target_crm2_max=3.0
    )
    metric.add(1.0, 0.4)  # 2.5x: over the ratio target
    assert metric.met() is False
    metric = bench_modules["harness"].Metric(
        "7", "start-up", "s", False, target_ratio=2.0, target_crm2_max=0.5
    )
    metric.add(0.6, 0.4)  # 1.5x, but over the absolute ceiling
    assert metric.met() is False
    rate = bench_modules["harness"].Metric("11", "job", "rows/s", True, target_crm2_min=5000)
    rate.add(4_900, 9_000)
    assert rate.met() is False and rate.target_text() == "≥ 5000 rows/s"
    rate.add(5_100, 9_000)
    rate.add(5_200, 9_000)  # median 5,100
    assert rate.met() is True
    empty = bench_modules["harness"].Metric("7", "start-up", "s", False, target_ratio=2.0)
    assert empty.met() is False  # no reading never passes


def test_interleaved_rounds_put_the_warm_up_first(bench_modules: dict) -> None:
    harness = bench_modules["harness"]
    assert harness.rounds(harness.FULL)[: harness.FULL.warmup] == [(0, False)]
    assert [measured for _, measured in harness.rounds(harness.FULL)].count(True) >= 5


def test_histogram_percentiles_are_within_its_bucket_width(bench_modules: dict) -> None:
    histogram = bench_modules["load"].LogHistogram()
    for ms in range(1, 1001):  # 1 ms … 1 s, uniform
        histogram.record(ms / 1000)
    for p, expected_ms in [(50, 500), (99, 990)]:
        assert histogram.percentile(p) == pytest.approx(expected_ms, rel=0.02)
    assert histogram.summary()["count"] == 1000


def test_environments_with_the_same_settings_copy_one_migrated_database(
    bench_modules: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the never-served template runs ``crm2 migrate``; the environments are copies."""
    harness = bench_modules["harness"]
    prepared: list[tuple[str, str | None]] = []

    def prepare(self: object, template: str | None = None) -> object:
        prepared.append((self.name, template))  # type: ignore[attr-defined]
        self._ready = True  # type: ignore[attr-defined]
        return self

    monkeypatch.setattr(harness.Crm2Env, "prepare", prepare)
    envs = harness.Envs(tmp_path)
    main, other = envs.get(), envs.get("other")
    events = envs.get("events", PYTHONPATH="/plugins")
    envs.get("other")  # made once
    seeded = envs.copy("seeded", other)
    first, second = harness.Crm2Env(tmp_path, "tpl0"), harness.Crm2Env(tmp_path, "tpl1")
    assert prepared == [
        ("tpl0", None),
        ("main", first.pg_name),
        ("other", first.pg_name),
        ("tpl1", None),
        ("events", second.pg_name),
        ("other", None),  # already made: prepare() returns it as it is
        ("seeded", other.pg_name),
    ]
    assert main.pg_name != other.pg_name
    assert events.env["PYTHONPATH"] == "/plugins"
    assert seeded.settings == other.settings


def test_the_run_reports_each_kind_of_step_even_when_it_fails(bench_modules: dict) -> None:
    harness = bench_modules["harness"]
    before = harness.SPENT.copy()
    with pytest.raises(RuntimeError), harness.spent("a failing step"):
        raise RuntimeError("boom")
    assert "a failing step" in harness.SPENT and "a failing step" not in before
    run = importlib.import_module("run")
    report = run._timing(10.0, {"server start": 1.0, "load runs": 4.0})
    assert list(report) == ["wall", "load runs", "server start"]


# -- the quick run (issue 17: under 3 minutes, on every change to the request path) ----

REQUEST_PATH = ["1", "1c", "2", "3", "4", "4b", "5", "7", "10", "16", "17"]


def test_the_quick_run_picks_the_request_path_and_only_can_pick_anything(
    bench_modules: dict,
) -> None:
    scenarios = bench_modules["scenarios"]
    assert scenarios.QUICK == REQUEST_PATH
    assert set(scenarios.QUICK) <= set(scenarios.SCENARIOS)
    run = importlib.import_module("run")
    assert run.chosen("", quick=True) == REQUEST_PATH
    assert run.chosen("", quick=False) == ISSUE_SCENARIOS  # the full run: every scenario
    assert run.chosen("all", quick=True) == ISSUE_SCENARIOS
    assert run.chosen("11, 15", quick=True) == ["11", "15"]  # the data scenarios, small


def test_the_full_profile_keeps_its_loads_and_the_quick_one_skips_warm_up_p99_runs(
    bench_modules: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = bench_modules["harness"]
    full, quick = harness.FULL, harness.QUICK
    assert (full.rounds, full.warmup, full.closed_s, full.open_s) == (5, 1, 8.0, 5.0)
    assert full.open_client == "httpx" and quick.open_client == "raw"
    runs: list[dict] = []
    monkeypatch.setattr(
        harness, "measure_http", lambda *args, **opts: runs.append(opts) or {"ok": 1}
    )
    server = harness.Server("s", [], {}, Path("."), 1)
    assert harness.measure_open(server, "u", quick, False, 10.0)["ok"] == 0
    assert runs == []
    harness.measure_open(server, "u", quick, True, 10.0)
    harness.measure_open(server, "u", full, False, 10.0)  # the full run warms up as before
    assert [(r["client"], r["rate"]) for r in runs] == [("raw", 10.0), ("httpx", 10.0)]


class _Recorded:
    def __init__(self, name: str, calls: list[str], fails: bool = False) -> None:
        self.name, self.calls, self.fails, self.url = name, calls, fails, f"http://{name}"

    def start(self) -> None:
        self.calls.append(f"start {self.name}")

    def wait_ready(self, url: str, timeout: float) -> float:
        self.calls.append(f"ready {self.name}")
        if self.fails:
            raise TimeoutError(url)
        return 0.0

    def stop(self) -> None:
        self.calls.append(f"stop {self.name}")


def test_servers_start_together_and_all_stop_when_one_fails(bench_modules: dict) -> None:
    harness = bench_modules["harness"]
    calls: list[str] = []
    with harness.running(_Recorded("a", calls), _Recorded("b", calls)) as (a, b):
        assert calls == ["start a", "start b", "ready a", "ready b"]  # start-ups overlap
        assert (a.name, b.name) == ("a", "b")
    calls.clear()
    with (
        pytest.raises(TimeoutError),
        harness.running(_Recorded("a", calls, fails=True), _Recorded("b", calls)),
    ):
        pass
    assert calls == ["start a", "start b", "ready a", "stop a", "stop b"]


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers under test
    delay_s = 0.0
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        type(self).bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay_s)
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[tuple[str, type[_SlowHandler]]]:
    handler = type("Handler", (_SlowHandler,), {"bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/deals", handler
    finally:
        server.shutdown()
        server.server_close()


def _open_raw(load: ModuleType, url: str, tmp_path: Path, capsys: pytest.CaptureFixture,
              *args: str) -> dict:  # fmt: skip
    body = tmp_path / "body.json"
    body.write_bytes(b'{"title": "x"}')
    argv = ["open", "--url", url, "--client", "raw", "--method", "POST", "--body-file", str(body)]
    assert load.main([*argv, *args]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_the_raw_open_loop_client_sends_every_request_of_its_schedule(
    bench_modules: dict, slow_server: tuple, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url, handler = slow_server
    out = _open_raw(bench_modules["load"], url, tmp_path, capsys,
                    "--rate", "200", "--duration", "0.25", "--connections", "8")  # fmt: skip
    assert (out["client"], out["ok"], out["errors"], out["statuses"]) == ("raw", 50, 0, {"201": 50})
    assert handler.bodies == [b'{"title": "x"}'] * 50


def test_the_raw_open_loop_client_charges_queueing_to_the_server(
    bench_modules: dict, slow_server: tuple, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """One connection, a 40 ms server, 100 requests/s: each request waits for the ones
    before it, and that wait counts from its intended send time (no coordinated omission)."""
    url, handler = slow_server
    handler.delay_s = 0.04
    out = _open_raw(bench_modules["load"], url, tmp_path, capsys,
                    "--rate", "100", "--duration", "0.2", "--connections", "1")  # fmt: skip
    assert out["ok"] == 20
    # the 20th request was due at 0.19 s and answered after 20 x 40 ms = 0.8 s
    assert out["latency"]["max_ms"] > 500
    assert out["latency"]["p50_ms"] > 100


def test_concurrent_environments_copy_their_template_only_once_it_is_migrated(
    bench_modules: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = bench_modules["harness"]
    events: list[str] = []

    def prepare(self: object, template: str | None = None) -> object:
        name = self.name  # type: ignore[attr-defined]
        if template is None:
            events.append(f"migrate {name}")
            time.sleep(0.1)  # the other thread asks for its copy meanwhile
            events.append(f"migrated {name}")
        else:
            events.append(f"copy {name}")
        self._ready = True  # type: ignore[attr-defined]
        return self

    monkeypatch.setattr(harness.Crm2Env, "prepare", prepare)
    envs = harness.Envs(tmp_path)
    threads = [threading.Thread(target=envs.get, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events[:2] == ["migrate tpl0", "migrated tpl0"]
    assert sorted(events[2:]) == ["copy a", "copy b"]


def test_the_run_prepares_each_environment_once_and_side_by_side(
    bench_modules: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = importlib.import_module("run")
    both_running = threading.Barrier(2, timeout=5)
    calls: list[str] = []

    def step(name: str) -> object:
        def prepare(_envs: object, _profile: object) -> None:
            calls.append(name)
            both_running.wait()  # breaks (and fails the test) unless the two overlap

        return prepare

    main, events = step("main"), step("events")
    monkeypatch.setattr(run, "PREPARE", {"1": main, "1c": main, "4": events, "4b": events})
    errors: list[str] = []
    monkeypatch.setattr(run, "log", errors.append)
    run.prepare(["1", "1c", "4", "4b", "8"], object(), run.QUICK)
    assert sorted(calls) == ["events", "main"] and errors == []


@pytest.fixture
def fake_clock(bench_modules: dict, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The harness's monotonic clock, moved on by its sleeps only: [now]."""
    harness = bench_modules["harness"]
    clock = [0.0]
    monkeypatch.setattr(harness.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(harness.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    return clock


def test_settle_waits_for_nothing_waiting_and_a_still_reading(
    bench_modules: dict, fake_clock: list[float]
) -> None:
    harness, clock = bench_modules["harness"], fake_clock
    # events still to relay, then handlers applying, then still
    readings = iter([(5, (0, 0)), (0, (10, 0)), (0, (20, 1)), *[(0, (30, 1))] * 100])
    assert harness.settle(lambda: next(readings), timeout=300, quiet=1.0, poll=0.25)
    # settled 1 s after the reading stopped changing (the 4th poll, at 0.75 s)
    assert clock[0] == pytest.approx(0.75 + 1.0)


def test_settle_gives_up_at_its_timeout(bench_modules: dict, fake_clock: list[float]) -> None:
    harness, clock = bench_modules["harness"], fake_clock
    assert not harness.settle(lambda: (1, None), timeout=3, quiet=1.0, poll=0.5)
    assert clock[0] == pytest.approx(3.0)
    counter = iter(range(10**6))  # work that never stops moving
    assert not harness.settle(lambda: (0, next(counter)), timeout=3, quiet=1.0, poll=0.5)


def test_backend_cpu_counts_new_backends_whole_and_skips_ended_ones(bench_modules: dict) -> None:
    harness = bench_modules["harness"]
    before = {1: 2.0, 2: 5.0}
    after = {1: 3.5, 3: 0.25}  # 2 ended, 3 started
    assert harness.backend_cpu_used(before, after) == pytest.approx(1.5 + 0.25)


def test_backend_cpu_finds_a_database_backend_by_its_title(
    bench_modules: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = bench_modules["harness"]
    titles = {
        "101": "postgres: 15/main: postgres crm2_bench_x 127.0.0.1(5000) idle",
        "102": "postgres: postgres crm2_bench_x [local] INSERT",
        "103": "postgres: 15/main: postgres crm2_bench_y 127.0.0.1(5001) idle",
        "104": "postgres: 15/main: checkpointer ",
        "105": "python bench/run.py crm2_bench_x",
    }
    proc = tmp_path / "proc"
    for pid, title in titles.items():
        (proc / pid).mkdir(parents=True)
        (proc / pid / "cmdline").write_bytes(title.replace(" ", "\0").encode())
    (proc / "self").mkdir()
    real_path = harness.Path
    monkeypatch.setattr(harness, "Path", lambda p: proc if p == "/proc" else real_path(p))
    monkeypatch.setattr(harness, "cpu_seconds", lambda pid: pid / 100)
    assert harness.pg_backend_cpu("crm2_bench_x") == {101: 1.01, 102: 1.02}


def test_scenario_11_truncates_the_handler_records_and_times_the_last_effect(
    bench_modules: dict,
) -> None:
    from datetime import UTC, datetime

    s11 = importlib.import_module("scenarios.s11_import")
    for table in ("core_applied_event", "core_dead_letter", "core_event", "deals_client"):
        assert table in s11.TRUNCATE
    posted = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()
    state = {"last_applied": datetime(2026, 12, 4, 12, 0, 9)}  # naive: stored as UTC
    assert s11._handlers_done_s(state, posted) == pytest.approx(9.0)
    assert s11._handlers_done_s({"last_applied": None}, posted) is None


def test_scenario_11_counts_a_handler_finished_at_one_type_or_every_event(
    bench_modules: dict,
) -> None:
    s11 = importlib.import_module("scenarios.s11_import")
    types = {"deals.client.created": 50, "tasks.task.created": 7}
    assert s11.owed(types, {"a": 50, "b": 57, "c": 7, "d": 0}) == 0
    assert s11.owed(types, {"a": 49, "b": 50}) == 1
