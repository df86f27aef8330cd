"""``gc_paused``: the cyclic collector off for an import batch, nested uses included."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from crm2_core.kit.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _gc_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_nested_pause_reenables_only_at_the_outermost_exit() -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_of_two_tasks_keep_it_off_until_both_end() -> None:
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second still runs
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_it_is_reenabled_when_the_batch_raises() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("the batch failed")
    assert gc.isenabled()


def test_leaving_collects_nothing_extra() -> None:
    threshold = gc.get_threshold()
    gc.set_threshold(1_000_000)  # no automatic collection during the test
    try:
        before = [s["collections"] for s in gc.get_stats()]
        with gc_paused():
            cycle: list[object] = []
            cycle.append(cycle)
            del cycle
        assert [s["collections"] for s in gc.get_stats()] == before
    finally:
        gc.set_threshold(*threshold)


def test_a_batch_is_parsed_with_the_collector_paused() -> None:
    """The parse of a batch makes its models at once (a job keeps them for its write pass)."""
    from crm2_core.kit.imports import CsvImport, _Tally, parsed_batches

    seen: list[bool] = []

    def parse(cells: dict[str, str]) -> str:
        seen.append(gc.isenabled())
        return cells["name"]

    async def apply(*_: object) -> list[str]:
        return []

    spec: CsvImport[str] = CsvImport("t", ("name",), ("name",), parse=parse, apply=apply)
    rows = [(n, {"name": f"r{n}"}) for n in range(2, 5)]
    assert list(parsed_batches(spec, rows, _Tally())) == [(3, [(2, "r2"), (3, "r3"), (4, "r4")])]
    assert seen == [False, False, False] and gc.isenabled()
