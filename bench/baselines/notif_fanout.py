"""Scenario 13's two sides, each run in a fresh process and timed inside it.

``crm2``: the notifications rules engine applies one ``deals.deal.won`` event to a rule
whose recipients are the 1,000 users holding the role ``benchfan`` (feed entries plus
their ``notifications.notification.created`` outbox rows, one transaction).
``raw``: asyncpg ``executemany`` of the same 1,000 feed rows. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

ROLE = "benchfan"
RULE = "bench fan-out"


async def crm2_side() -> dict[str, float]:
    from crm2_notifications.models import Rule
    from crm2_notifications.service import engine
    from sqlalchemy import select

    from crm2_core.cli.main import load_context

    context = load_context()
    try:
        async with context.session_factory() as session:
            found = (
                await session.execute(select(Rule).where(Rule.name == RULE))
            ).scalar_one_or_none()
            if found is None:
                template = {"title": "Deal won: {{ data.value }}"}
                session.add(Rule(name=RULE, event_type="deals.deal.won", template=template,
                                 recipients={"roles": [ROLE]}, channels=["inapp"]))  # fmt: skip
                await session.commit()
        event_id = uuid.uuid4()
        envelope = {
            "id": str(event_id), "type": "deals.deal.won", "version": 1,
            "occurred_at": datetime.now(UTC).isoformat(), "actor": {"kind": "system"},
            "subject": str(uuid.uuid4()),
            "data": {"value": "900.00", "currency": "EUR", "client_id": str(uuid.uuid4()),
                     "owner_id": str(uuid.uuid4())},
        }  # fmt: skip
        started = time.perf_counter()
        async with context.session_factory() as session:
            await engine.apply(session, context, envelope, event_id)
            await session.commit()
        return {"seconds": time.perf_counter() - started}
    finally:
        await context.engine.dispose()


async def raw_side(dsn: str) -> dict[str, float]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        users = [r["user_id"] for r in await conn.fetch(
            "SELECT user_id FROM auth_user_role WHERE role_name = $1", ROLE)]  # fmt: skip
        event_id, now = uuid.uuid4(), datetime.now(UTC)
        rows = [
            (
                uuid.uuid4(),
                u,
                event_id,
                "deals.deal.won",
                "s",
                "Deal won: 900.00",
                "",
                None,
                True,
                now,
            )
            for u in users
        ]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO notifications_notification (id, user_id, event_id, event_type,"
                " subject, title, body, link, in_feed, created_at)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                rows,
            )
        return {"seconds": time.perf_counter() - started}
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("side", choices=["crm2", "raw"])
    parser.add_argument("--dsn", default="")
    args = parser.parse_args()
    result = asyncio.run(crm2_side() if args.side == "crm2" else raw_side(args.dsn))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
