"""crm2 benchmark harness: each scenario against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only 1,7|all]

For every scenario the crm2 variant and its baseline are measured interleaved
(A B A B …): one warm-up round, then the measured rounds. Each round gives a ratio
crm2 / baseline; the median with min and max is reported, with the absolute figures.
Results go to ``bench/results/<YYYY-MM-DD-HHMM>.json`` and a Markdown table to stdout.
Timings never fail the run: the exit status is non-zero only when something crashed.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BENCH, FULL, QUICK, REPO, SPENT, Envs, Metric, Profile, log, markdown
from scenarios import PREPARE, SCENARIOS
from scenarios import QUICK as QUICK_SCENARIOS


def compile_sources() -> None:
    """Byte-compile crm2's own packages, as installing its wheels does (pip compiles).

    The bench serves the checkout's editable install; with PYTHONDONTWRITEBYTECODE=1
    (set here, and in the Dockerfile) Python would compile every crm2 module again on
    each start, while the baselines' libraries in site-packages were compiled by pip:
    scenario 7 would charge crm2 a cost no deployment pays. ``__pycache__`` is ignored
    by git.
    """
    folders = [REPO / "crm2_core", *(REPO / "hookspecs").glob("crm2_*")]
    folders += [p for p in (REPO / "plugins").glob("*/crm2_*") if p.is_dir()]
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)


def _timing(wall: float, by_kind: dict[str, float]) -> dict[str, float]:
    """Wall seconds, and how many of them went to each kind of step (largest first)."""
    kinds = sorted(by_kind.items(), key=lambda item: -item[1])
    return {"wall": round(wall, 1), **{kind: round(secs, 1) for kind, secs in kinds}}


def chosen(only: str, quick: bool) -> list[str]:
    """The scenarios to run: ``--only``'s (``all``: every one), else every one for the
    full run and the request path's (``scenarios.QUICK``) for ``--quick``."""
    wanted = [s.strip() for s in only.split(",") if s.strip()]
    if wanted == ["all"] or (not wanted and not quick):
        return list(SCENARIOS)
    return wanted or list(QUICK_SCENARIOS)


def prepare(wanted: list[str], envs: Envs, profile: Profile) -> None:
    """Make the chosen scenarios' environments concurrently (``scenarios.PREPARE``).

    Migrations and seeding are separate processes (``crm2 migrate``, ``crm2 … seed-load``,
    PostgreSQL's COPY), so on 2 cores, or on a machine shared with other processes, they
    finish sooner side by side. A failure is logged and left to the scenario, which
    makes (or fails to make) its environment again when it runs.
    """
    steps = list(dict.fromkeys(PREPARE[key] for key in wanted if key in PREPARE))
    if not steps:
        return
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        for future in [pool.submit(step, envs, profile) for step in steps]:
            if (error := future.exception()) is not None:
                log(f"preparing an environment failed (its scenario retries): {error!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="crm2 benchmarks (ratios vs baselines)")
    parser.add_argument("--quick", action="store_true",
                        help="2 short rounds, small data, the request-path scenarios")  # fmt: skip
    parser.add_argument("--only", default="",
                        help="comma-separated scenarios, e.g. 1,3b,7, or 'all'")  # fmt: skip
    parser.add_argument("--results-dir", default=str(BENCH / "results"))
    args = parser.parse_args(argv)

    profile = QUICK if args.quick else FULL
    wanted = chosen(args.only, args.quick)
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; implemented: {', '.join(SCENARIOS)}")

    compile_sources()
    started = dt.datetime.now()
    metrics: list[Metric] = []
    errors: dict[str, str] = {}
    timing: dict[str, dict[str, float]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="crm2-bench-"))
    envs = Envs(workdir)
    run_started = time.perf_counter()
    try:
        if any(key in PREPARE for key in wanted):
            log(f"preparing the environments of {', '.join(k for k in wanted if k in PREPARE)}")
            before, began = SPENT.copy(), time.perf_counter()
            prepare(wanted, envs, profile)
            timing["prepare"] = _timing(time.perf_counter() - began, SPENT - before)
            log(f"preparing took {timing['prepare']['wall']:.0f} s (steps side by side: "
                + ", ".join(f"{kind} {secs:.0f} s" for kind, secs in timing["prepare"].items()
                            if kind != "wall") + ")")  # fmt: skip
        for key in wanted:
            log(f"scenario {key} ({'quick' if args.quick else 'full'})")
            before, began = SPENT.copy(), time.perf_counter()
            try:
                metrics += SCENARIOS[key](envs, profile)
            except Exception:  # record, keep going; the exit status reports it
                errors[key] = traceback.format_exc()
                log(f"scenario {key} crashed:\n{errors[key]}")
            timing[key] = _timing(time.perf_counter() - began, SPENT - before)
            log(f"scenario {key} took {timing[key]['wall']:.0f} s: " + ", ".join(
                f"{kind} {secs:.0f} s" for kind, secs in timing[key].items() if kind != "wall"
            ))  # fmt: skip
    finally:
        envs.close()
        shutil.rmtree(workdir, ignore_errors=True)
    timing["total"] = _timing(time.perf_counter() - run_started, SPENT)

    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{started:%Y-%m-%d-%H%M}{'-quick' if args.quick else ''}.json"
    report = {
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "scenarios": wanted,
        "profile": profile.__dict__,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "metrics": [m.as_dict() for m in metrics],
        "seconds": timing,
        "errors": errors,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(metrics, errors))
    print(f"\nwall time {timing['total']['wall']:.0f} s: " + ", ".join(
        f"{kind} {secs:.0f} s" for kind, secs in timing["total"].items() if kind != "wall"
    ))  # fmt: skip
    print(f"\nresults: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
