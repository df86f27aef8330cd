"""The relay keeps the statistics of tables a bulk write outgrew (``analyze_grown_tables``)."""

from __future__ import annotations

from typing import Any

import pytest

from crm2_core.events import bus
from crm2_core.testing import Crm2TestApp


async def test_a_relay_with_work_looks_for_grown_tables_at_most_every_few_seconds(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks: list[Any] = []

    async def look(session_factory: Any, least: int = 0) -> list[str]:
        looks.append(session_factory)
        return []

    monkeypatch.setattr(bus, "analyze_grown_tables", look)
    app: Crm2TestApp = await crm2_app_factory()
    events = app.context.events
    events._analyzed_at = -1e9
    await events._keep_statistics()
    # the first look happened; another within STATISTICS_EVERY_SECONDS does not
    assert looks and looks[0] is app.context.session_factory
    seen = len(looks)
    await events._keep_statistics()
    assert len(looks) == seen
    events._analyzed_at -= bus.STATISTICS_EVERY_SECONDS
    await events._keep_statistics()
    assert len(looks) == seen + 1


async def test_a_failing_look_does_not_stop_the_relay(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(session_factory: Any, least: int = 0) -> list[str]:
        raise RuntimeError("no statistics today")

    monkeypatch.setattr(bus, "analyze_grown_tables", broken)
    app: Crm2TestApp = await crm2_app_factory()
    app.context.events._analyzed_at = -1e9
    await app.context.events._keep_statistics()  # logged, not raised
