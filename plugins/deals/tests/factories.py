"""Rows written straight through the models: fast set-up for tests that are about something else."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from crm2_deals.models import Activity, Client, Deal, Pipeline, Policy, Stage
from sqlalchemy import select

from crm2_core.api import utcnow
from crm2_core.testing import Crm2TestApp, EventRecord


async def _add(app: Crm2TestApp, row: Any) -> Any:
    async with app.context.session_factory() as session:
        session.add(row)
        await session.commit()
    return row


async def make_client(app: Crm2TestApp, owner_id: uuid.UUID, **fields: Any) -> Client:
    name = fields.pop("name", f"Client {uuid.uuid4().hex[:6]}")
    values: dict[str, Any] = {"kind": "person", "name": name, "search_text": name.lower()}
    values.update(fields)
    return await _add(app, Client(owner_id=owner_id, **values))


async def first_stage(app: Crm2TestApp) -> Stage:
    async with app.context.session_factory() as session:
        stmt = (
            select(Stage)
            .join(Pipeline, Pipeline.id == Stage.pipeline_id)
            .where(Pipeline.is_default.is_(True))  # type: ignore[attr-defined]
            .order_by(Stage.position)
        )
        return (await session.execute(stmt)).scalars().first()  # type: ignore[return-value]


async def make_deal(app: Crm2TestApp, client: Client, **fields: Any) -> Deal:
    stage = await first_stage(app)
    values: dict[str, Any] = {
        "title": "Deal",
        "client_id": client.id,
        "pipeline_id": stage.pipeline_id,
        "stage_id": stage.id,
        "status": "open",
        "value_minor": 10_000,
        "currency": "EUR",
        "owner_id": client.owner_id,
    }
    values.update(fields)
    return await _add(app, Deal(**values))


async def make_policy(app: Crm2TestApp, client: Client, **fields: Any) -> Policy:
    today = date.today()
    values: dict[str, Any] = {
        "number": f"P-{uuid.uuid4().hex[:8]}",
        "insurer": "Allianz",
        "client_id": client.id,
        "product": "Motor",
        "premium_minor": 65_000,
        "currency": "EUR",
        "payment_frequency": "annual",
        "start_date": today - timedelta(days=100),
        "end_date": today + timedelta(days=265),
        "status": "active",
        "owner_id": client.owner_id,
    }
    values.update(fields)
    return await _add(app, Policy(**values))


async def make_activity(
    app: Crm2TestApp, client: Client, at: datetime | None = None, **fields: Any
) -> Activity:
    values: dict[str, Any] = {
        "kind": "note",
        "client_id": client.id,
        "owner_id": client.owner_id,
        "subject": "note",
        "occurred_at": at or utcnow(),
    }
    values.update(fields)
    return await _add(app, Activity(**values))


async def get_row(app: Crm2TestApp, model: Any, row_id: uuid.UUID) -> Any:
    async with app.context.session_factory() as session:
        return await session.get(model, row_id)


async def rows(app: Crm2TestApp, model: Any, *where: Any) -> list[Any]:
    async with app.context.session_factory() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def events_of(app: Crm2TestApp, type_: str) -> list[EventRecord]:
    return await rows(app, EventRecord, EventRecord.type == type_)
