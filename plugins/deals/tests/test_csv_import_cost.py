"""What a client import costs with every plugin installed: round trips per imported row.

Every client created publishes ``deals.client.created``; with the embedded broker the
other plugins' handlers (tasks' automations, notifications' rules) run in the serving
process. One event at a time they cost ~8 statements per row (a claim, a position
read, the rules and webhooks read, a transaction each); applied a relay batch at a
time (``EventHandler.handle_batch``) a few per batch. Bounded here so that cannot
silently regress.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deals_kit import API, Deals
from sqlalchemy import event, text

from crm2_core.testing import Crm2TestApp

ROWS = 200
# the plugins this repository ships with event handlers (console has none)
EVERY_PLUGIN = ["deals", "tasks", "notifications", "payments", "documents", "backup"]
# the handlers that take deals.client.created
CLIENT_HANDLERS = {"tasks.automations", "notifications.rules"}


@contextmanager
def round_trips(app: Crm2TestApp) -> Iterator[list[str]]:
    """Every statement and commit on the app's engine, but the test kit's own polling."""
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        if not text.startswith("SELECT count(*)"):  # settle_events() looking
            seen.append(text)

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    engine = app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


async def _applied(app: Crm2TestApp) -> dict[str, int]:
    async with app.context.session_factory() as session:
        # the core's record of applied events, read by name (plugins import only its api)
        stmt = text("SELECT handler, count(*) FROM core_applied_event GROUP BY handler")
        return {h: int(n) for h, n in (await session.execute(stmt)).all()}


async def test_import_with_every_plugin_costs_few_round_trips_per_row(
    crm2_app_factory: Any,
) -> None:
    app: Crm2TestApp = await crm2_app_factory(plugins=EVERY_PLUGIN)
    deals = Deals(app)
    admin = await deals.user("admin")
    lines = ["kind,name,emails,tags", *(f"person,C {i},c{i}@cost.example,x" for i in range(ROWS))]
    files = {"file": ("clients.csv", "\n".join(lines).encode(), "text/csv")}
    with round_trips(app) as seen:
        accepted = await deals.client.post(
            f"{API}/clients/import", params={"background": "true"}, files=files,
            headers=admin.headers,
        )  # fmt: skip
        assert accepted.status_code == 202, accepted.text
        await app.settle_jobs()
        await app.settle_events(within=60)
    applied = await _applied(app)
    assert {h: applied.get(h) for h in CLIENT_HANDLERS} == dict.fromkeys(CLIENT_HANDLERS, ROWS)
    # the request, the job (check + write passes), the relay and both handlers: ~0.3 a
    # row today (one event at a time it was ~10)
    assert len(seen) <= ROWS // 2, f"{len(seen)} round trips for {ROWS} rows"
