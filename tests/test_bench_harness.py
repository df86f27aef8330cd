"""The benchmark suite's own arithmetic and wiring (no timings: bench/ is not a test).

Running the scenarios takes minutes and real services (``python3 dev.py bench --quick``);
this keeps what can rot silently — imports, the scenario list, ratios, percentiles —
checked on every test run.
"""

from __future__ import annotations

import importlib
import sys
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


def test_lower_is_better_targets_and_absolute_ceilings(bench_modules: dict) -> None:
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
