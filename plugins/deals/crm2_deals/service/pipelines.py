"""Pipelines with their ordered stages, lost reasons, and the per-stage summary."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import Conflict, check_version, exponent, from_minor, update_versioned, utcnow
from crm2_deals.errors import InUse, PipelineNotFound, StageNotInPipeline
from crm2_deals.models import LostReason, Pipeline, Stage
from crm2_deals.repository import pipelines as repo
from crm2_deals.schemas.pipelines import (
    CurrencyTotal,
    LostReasonCreate,
    OwnerSummary,
    PipelineCreate,
    PipelinePublic,
    PipelineSummary,
    PipelineUpdate,
    StageIn,
    StagePublic,
    StageSummary,
)
from crm2_deals.visibility import RULES
from crm2_hookspecs import Principal


async def publics(session: AsyncSession, pipelines: Sequence[Pipeline]) -> list[PipelinePublic]:
    """Pipelines with their stages (one query for all of them)."""
    stages = await repo.stages_of(session, [p.id for p in pipelines])
    return [
        PipelinePublic.model_validate(
            {
                **p.model_dump(),
                "stages": [StagePublic.model_validate(s) for s in stages[p.id]],
            }
        )
        for p in pipelines
    ]


async def get_pipeline(session: AsyncSession, pipeline_id: uuid.UUID) -> Pipeline:
    pipeline = await repo.get_pipeline(session, pipeline_id)
    if pipeline is None:
        raise PipelineNotFound(f"no pipeline {pipeline_id}")
    return pipeline


async def _check_name(session: AsyncSession, name: str, exclude: uuid.UUID | None = None) -> None:
    other = await repo.pipeline_by_name(session, name)
    if other is not None and other.id != exclude:
        raise Conflict(f"a pipeline named {other.name!r} exists")


async def create_pipeline(session: AsyncSession, data: PipelineCreate) -> Pipeline:
    await _check_name(session, data.name)
    first = await repo.default_pipeline(session) is None
    pipeline = Pipeline(name=data.name, is_default=data.is_default or first)
    session.add(pipeline)
    await session.flush()
    session.add_all(_new_stage(pipeline.id, s) for s in data.stages)
    if pipeline.is_default:
        await repo.clear_default(session, keep=pipeline.id)
    await session.flush()
    return pipeline


def _new_stage(pipeline_id: uuid.UUID, data: StageIn) -> Stage:
    return Stage(
        pipeline_id=pipeline_id,
        name=data.name,
        probability=data.probability,
        kind=data.kind,
        position=data.position or 0,
    )


async def update_pipeline(
    session: AsyncSession, pipeline_id: uuid.UUID, if_match: str, data: PipelineUpdate
) -> Pipeline:
    pipeline = await get_pipeline(session, pipeline_id)
    check_version(if_match, pipeline.version)
    values: dict[str, object] = {}
    if data.name is not None and data.name != pipeline.name:
        await _check_name(session, data.name, exclude=pipeline.id)
        values["name"] = data.name
    if data.is_default is not None and data.is_default != pipeline.is_default:
        if not data.is_default:  # a deal created without a pipeline goes to the default
            raise Conflict(
                "this is the default pipeline; make another one the default instead "
                "(PATCH it with is_default: true)"
            )
        values["is_default"] = data.is_default
    if data.stages is not None:
        await _replace_stages(session, pipeline.id, data.stages)
    if not values and data.stages is None:
        return pipeline
    await update_versioned(
        session,
        Pipeline,
        Pipeline.id == pipeline.id,
        pipeline.version,
        {**values, "updated_at": utcnow()},
    )
    if values.get("is_default") is True:
        await repo.clear_default(session, keep=pipeline.id)
    await session.refresh(pipeline)
    return pipeline


async def _replace_stages(
    session: AsyncSession, pipeline_id: uuid.UUID, wanted: Sequence[StageIn]
) -> None:
    """Keep, change, add and remove stages; a stage holding deals keeps its kind and stays."""
    current = {s.id: s for s in (await repo.stages_of(session, [pipeline_id]))[pipeline_id]}
    kept = [s for s in wanted if s.id is not None]
    strangers = [str(s.id) for s in kept if s.id not in current]
    if strangers:
        raise StageNotInPipeline(f"stage(s) {', '.join(strangers)} are not in this pipeline")
    removed = set(current) - {s.id for s in kept}
    retyped = {s.id for s in kept if s.id is not None and current[s.id].kind != s.kind}
    await repo.lock_stages(session, removed | retyped)  # a deal entering one: first, or after
    busy = await repo.stages_in_use(session, removed | retyped)
    if busy:
        raise InUse(
            "stage(s) holding deals cannot be removed or change kind: "
            + ", ".join(current[s].name for s in busy)
        )
    await repo.delete_stages(session, removed)
    # Positions are unique per pipeline: park the kept stages out of the way first.
    for i, stage in enumerate(kept):
        assert stage.id is not None
        await repo.update_stage(session, stage.id, {"position": -1 - i})
    for stage in kept:
        assert stage.id is not None
        await repo.update_stage(
            session,
            stage.id,
            {
                "name": stage.name,
                "probability": stage.probability,
                "kind": stage.kind,
                "position": stage.position,
            },
        )
    session.add_all(_new_stage(pipeline_id, s) for s in wanted if s.id is None)
    await session.flush()
    for row in current.values():
        if row.id not in removed:
            await session.refresh(row)


async def delete_pipeline(
    session: AsyncSession, pipeline_id: uuid.UUID, if_match: str | None = None
) -> None:
    """Delete a pipeline that holds no deals and is not the default; a sent ``If-Match``
    must name its version."""
    pipeline = await get_pipeline(session, pipeline_id)
    if if_match is not None:
        check_version(if_match, pipeline.version)  # a stale one is 412 before any 409
    if pipeline.is_default:
        raise InUse("this is the default pipeline; make another one the default first")
    if await repo.pipeline_in_use(session, pipeline.id):
        raise InUse("the pipeline holds deals")
    await repo.delete_pipeline(session, pipeline, if_match)


async def create_lost_reason(session: AsyncSession, data: LostReasonCreate) -> LostReason:
    if await repo.lost_reason_by_name(session, data.name) is not None:
        raise Conflict(f"the lost reason {data.name!r} exists")
    reason = LostReason(name=data.name)
    session.add(reason)
    await session.flush()
    return reason


# -- summary ---------------------------------------------------------------------------


def _totals(sums: dict[str, int], probability: int) -> list[CurrencyTotal]:
    """Sums of minor units per currency → totals with their forecast at ``probability``."""
    out = []
    for currency in sorted(sums):
        value = from_minor(sums[currency], currency)
        forecast = _weighted(value, probability, currency)
        out.append(CurrencyTotal(currency=currency, value=value, forecast=forecast))
    return out


def _weighted(value: Decimal, probability: int, currency: str) -> Decimal:
    """``value * probability %`` rounded half-up to the currency's minor unit."""
    quantum = Decimal(1).scaleb(-exponent(currency))
    return (value * probability / 100).quantize(quantum, rounding=ROUND_HALF_UP)


async def summary(
    session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID, by_owner: bool
) -> PipelineSummary:
    """Per stage: count, total and forecast per currency (and per owner) of the visible deals."""
    pipeline = await get_pipeline(session, pipeline_id)
    stages = (await repo.stages_of(session, [pipeline.id]))[pipeline.id]
    rows = await repo.stage_totals(
        session, RULES.in_session(session, principal), pipeline.id, by_owner
    )
    counts: dict[uuid.UUID, int] = defaultdict(int)
    sums: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    owners: dict[uuid.UUID, dict[uuid.UUID, tuple[list[int], dict[str, int]]]] = defaultdict(dict)
    for stage_id, currency, owner_id, count, total in rows:
        counts[stage_id] += count
        sums[stage_id][currency] += total
        if owner_id is not None:
            entry = owners[stage_id].setdefault(owner_id, ([0], defaultdict(int)))
            entry[0][0] += count
            entry[1][currency] += total
    overall_value: dict[str, Decimal] = defaultdict(Decimal)
    overall_forecast: dict[str, Decimal] = defaultdict(Decimal)
    out: list[StageSummary] = []
    for stage in stages:
        totals = _totals(sums[stage.id], stage.probability)
        for t in totals:
            overall_value[t.currency] += t.value
            overall_forecast[t.currency] += t.forecast
        per_owner = None
        if by_owner:
            per_owner = [
                OwnerSummary(owner_id=o, count=c[0], totals=_totals(s, stage.probability))
                for o, (c, s) in sorted(owners[stage.id].items(), key=lambda kv: str(kv[0]))
            ]
        out.append(
            StageSummary(
                stage_id=stage.id,
                name=stage.name,
                kind=stage.kind,
                probability=stage.probability,
                position=stage.position,
                count=counts[stage.id],
                totals=totals,
                owners=per_owner,
            )
        )
    return PipelineSummary(
        pipeline_id=pipeline.id,
        name=pipeline.name,
        count=sum(counts.values()),
        totals=[
            CurrencyTotal(currency=c, value=overall_value[c], forecast=overall_forecast[c])
            for c in sorted(overall_value)
        ],
        stages=out,
    )
