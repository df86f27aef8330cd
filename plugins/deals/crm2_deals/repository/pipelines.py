"""Every query on pipelines, stages and lost reasons, and the pipeline summary aggregate.

Pipelines are shared by everyone; the summary counts only the deals the caller may see.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Exists,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    OrderKey,
    PageParams,
    Repository,
    Visibility,
    execute_in_session,
    folded,
    paginate,
)
from crm2_deals.errors import PipelineNotFound
from crm2_deals.models import Deal, LostReason, Pipeline, Stage

# The default pipeline first, then by name.
PIPELINE_ORDER = [
    OrderKey(col(Pipeline.is_default), descending=True),
    OrderKey(col(Pipeline.name)),
    OrderKey(col(Pipeline.id)),
]


async def list_pipelines(
    session: AsyncSession, page: PageParams
) -> tuple[list[Pipeline], str | None]:
    return await paginate(session, select(Pipeline), PIPELINE_ORDER, page)


async def get_pipeline(session: AsyncSession, pipeline_id: uuid.UUID) -> Pipeline | None:
    return await session.get(Pipeline, pipeline_id)


async def default_pipeline(session: AsyncSession) -> Pipeline | None:
    order = [k.ordering() for k in PIPELINE_ORDER]
    stmt = select(Pipeline).order_by(*order).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def pipeline_by_name(session: AsyncSession, name: str) -> Pipeline | None:
    """The pipeline named ``name`` in any case (``folded``: "Élan" is "élan" on both
    databases); the first by name should older rows differ only in case."""
    stmt = select(Pipeline).where(folded(col(Pipeline.name)) == folded(name))
    return (await session.execute(stmt.order_by(col(Pipeline.name)).limit(1))).scalars().first()


async def clear_default(session: AsyncSession, keep: uuid.UUID) -> None:
    """Only one default pipeline: unset the flag everywhere but on ``keep``."""
    await session.execute(
        update(Pipeline)
        .where(col(Pipeline.id) != keep, col(Pipeline.is_default).is_(True))
        .values(is_default=False, version=col(Pipeline.version) + 1)
    )


async def stages_of(
    session: AsyncSession, pipeline_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Stage]]:
    """Each pipeline's stages ordered by position."""
    wanted = list(pipeline_ids)
    out: dict[uuid.UUID, list[Stage]] = {p: [] for p in wanted}
    if not wanted:
        return out
    stmt = select(Stage).where(col(Stage.pipeline_id).in_(wanted)).order_by(col(Stage.position))
    for stage in (await session.execute(stmt)).scalars():
        out[stage.pipeline_id].append(stage)
    return out


async def get_stage(session: AsyncSession, stage_id: uuid.UUID) -> Stage | None:
    return await session.get(Stage, stage_id)


async def stage_for_deal(session: AsyncSession, stage_id: uuid.UUID) -> Stage | None:
    """The stage a deal is about to enter, read again and share-locked to the commit
    (PostgreSQL ``FOR SHARE``; SQLite's writers take turns already): a change of its
    kind (``lock_stages``) waits until the deal is written and then finds it there, and
    this read waits for such a change in flight and then sees the kind it made."""
    stmt = (
        select(Stage)
        .where(col(Stage.id) == stage_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    stage: Stage | None = (await session.execute(stmt)).scalar_one_or_none()
    return stage


async def start_still_open(session: AsyncSession, stage: StageRef) -> bool:
    """Is ``stage``, read as a new deal's start (``pipeline_with_first_open_stage``: on
    PostgreSQL a read outside any lock, maybe outside the transaction), still open,
    share-locked to the commit as ``stage_for_deal`` locks a given stage? On SQLite the
    start was read in the transaction, and its writers take turns (``BEGIN IMMEDIATE``):
    nothing can have changed, nothing is read again."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    locked = await stage_for_deal(session, stage.id)
    return locked is not None and locked.kind == "open"


async def lock_stages(session: AsyncSession, stage_ids: Iterable[uuid.UUID]) -> None:
    """Lock stages about to change kind or go (``FOR UPDATE``) before looking whether
    they hold deals: a deal entering one (``stage_for_deal``) is then either written
    first, and found, or waits and sees the new kind."""
    wanted = sorted(stage_ids)  # one order for every locker: no deadlock between two
    if wanted:
        stmt = select(col(Stage.id)).where(col(Stage.id).in_(wanted)).with_for_update()
        await session.execute(stmt.order_by(col(Stage.id)))


@dataclass(frozen=True, slots=True)
class StageRef:
    """What a new deal needs of its first stage, without loading a ``Stage`` object."""

    id: uuid.UUID
    pipeline_id: uuid.UUID
    name: str
    kind: str


class Start(NamedTuple):
    """A new deal's start: the pipeline, its first open stage (``None``: it has none) and
    the answer to the query's ``also``."""

    pipeline_name: str
    stage: StageRef | None
    also: bool


@lru_cache(maxsize=16)
def _first_open_stage(
    by_id: bool, also: Exists | None
) -> Select[uuid.UUID, str, uuid.UUID, str, str, bool]:
    """A new deal's start query, built once per shape (see ``Repository.visible_exists``).

    Columns, not entities: loading a ``Pipeline`` and a ``Stage`` into the session's
    identity map cost more CPU than the query's round trip.
    """
    order = [k.ordering() for k in PIPELINE_ORDER]
    stmt = select(
        col(Pipeline.id),
        col(Pipeline.name),
        col(Stage.id),
        col(Stage.name),
        col(Stage.kind),
        also if also is not None else true(),
    ).outerjoin(Stage, (col(Stage.pipeline_id) == col(Pipeline.id)) & (col(Stage.kind) == "open"))
    if by_id:
        stmt = stmt.where(col(Pipeline.id) == bindparam("start_pipeline_id"))
    return stmt.order_by(*order, col(Stage.position)).limit(1)


async def pipeline_with_first_open_stage(
    session: AsyncSession,
    pipeline_id: uuid.UUID | None,
    *,
    also: tuple[Exists, Mapping[str, Any]] | None = None,
) -> Start | None:
    """The pipeline (``pipeline_id``, else the default one), its first open stage and the
    answer to ``also`` (an ``EXISTS`` asked in the same query, with its parameters;
    ``True`` without one), in one query (a new deal's start; ``None``: no such pipeline).

    ``also``'s clause should be built once (``Repository.visible_exists``): the whole
    statement is cached per clause.
    """
    clause, params = also if also is not None else (None, {})
    stmt = _first_open_stage(pipeline_id is not None, clause)
    values = {**params, "start_pipeline_id": pipeline_id} if pipeline_id is not None else params
    # a new deal's, the hot path: sent without BEGIN, so the deal's one write may be too
    rows = await execute_in_session(session, stmt, values, reads_only=True)
    if not rows:
        return None
    pipeline, pipeline_name, stage_id, stage_name, kind, answer = rows[0]
    stage = None if stage_id is None else StageRef(stage_id, pipeline, stage_name, kind)
    return Start(pipeline_name, stage, bool(answer))


class StartGuesses:
    """A new deal's start as this application last read it, per pipeline asked for
    (``None``: the default one). Only a guess: a create that uses it checks it in its
    write (``start_still``), and a wrong guess costs that create the usual read.

    One per application (``service.deals.start_guesses``: kept on the app context), so
    two apps in one process never start deals on each other's pipelines."""

    MOST = 64

    def __init__(self) -> None:
        self._stages: dict[uuid.UUID | None, StageRef] = {}

    def get(self, pipeline_id: uuid.UUID | None) -> StageRef | None:
        """The stage a new deal in ``pipeline_id`` started in when last read, if any."""
        return self._stages.get(pipeline_id)

    def remember(self, pipeline_id: uuid.UUID | None, start: Start | None) -> None:
        """Keep ``start``'s stage as the next guess for ``pipeline_id`` (forget it without one)."""
        if start is None or start.stage is None or start.stage.kind != "open":
            self._stages.pop(pipeline_id, None)
            return
        if len(self._stages) >= self.MOST and pipeline_id not in self._stages:
            self._stages.clear()
        self._stages[pipeline_id] = start.stage


@lru_cache(maxsize=16)
def _still_first(by_id: bool, also: Exists) -> ColumnElement[bool]:
    first = _first_open_stage(by_id, None).with_only_columns(col(Pipeline.id), col(Stage.id))
    guess_stage = bindparam("guess_stage_id", type_=Stage.__table__.c.id.type)  # type: ignore[attr-defined]
    guess = tuple_(
        bindparam("guess_pipeline_id", type_=Pipeline.__table__.c.id.type),  # type: ignore[attr-defined]
        guess_stage,
    )
    # The stage share-locked to the commit, as ``stage_for_deal`` does, and its kind
    # read again under the lock: a retype that has locked it (``lock_stages``) and not
    # committed yet is waited for, and its new kind then fails the check (PostgreSQL
    # re-reads a locked row's latest version); one that comes later waits for the deal
    # and finds it there. Without the lock the statement's snapshot (the old kind)
    # decided, and an open deal went into a stage just made won or lost.
    still_open = exists(
        select(col(Stage.id))
        .where(col(Stage.id) == guess_stage, col(Stage.kind) == "open")
        .with_for_update(read=True)
    )
    return and_(guess.in_(first), also, still_open)


def start_still(
    pipeline_id: uuid.UUID | None, guess: StageRef, also: tuple[Exists, Mapping[str, Any]]
) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """The condition that ``guess`` is still where a new deal in ``pipeline_id`` starts
    (what ``pipeline_with_first_open_stage`` would answer now) and ``also`` holds, with
    its parameters: for ``insert_together_if``. Built once per shape."""
    clause, params = also
    values = {**params, "guess_pipeline_id": guess.pipeline_id, "guess_stage_id": guess.id}
    if pipeline_id is not None:
        values["start_pipeline_id"] = pipeline_id
    return _still_first(pipeline_id is not None, clause), values


async def stages_in_use(session: AsyncSession, stage_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    wanted = list(stage_ids)
    if not wanted:
        return set()
    stmt = select(col(Deal.stage_id)).where(col(Deal.stage_id).in_(wanted)).distinct()
    return set((await session.execute(stmt)).scalars())


async def stage_and_pipeline_exist(session: AsyncSession, stage_id: uuid.UUID) -> bool:
    """Are the stage and its pipeline still there (a failed insert asking why)?"""
    stmt = select(
        exists().where(col(Stage.id) == stage_id, col(Pipeline.id) == col(Stage.pipeline_id))
    )
    return bool((await session.execute(stmt)).scalar())


async def pipeline_in_use(session: AsyncSession, pipeline_id: uuid.UUID) -> bool:
    stmt = select(exists().where(col(Deal.pipeline_id) == pipeline_id))
    return bool((await session.execute(stmt)).scalar())


async def delete_stages(session: AsyncSession, stage_ids: Iterable[uuid.UUID]) -> None:
    wanted = list(stage_ids)
    if wanted:
        await session.execute(delete(Stage).where(col(Stage.id).in_(wanted)))


async def update_stage(session: AsyncSession, stage_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(update(Stage).where(col(Stage.id) == stage_id).values(**values))


PIPELINES = Repository(Pipeline, PipelineNotFound, noun="pipeline")


async def delete_pipeline(session: AsyncSession, pipeline: Pipeline, if_match: str | None) -> None:
    """Delete the pipeline; a sent ``If-Match`` naming another version is 412 (also when an
    edit commits after the read: the version is a condition of the ``DELETE``)."""
    await PIPELINES.delete_if_match(session, pipeline, if_match)


# -- lost reasons ----------------------------------------------------------------------


async def list_lost_reasons(session: AsyncSession, include_inactive: bool) -> list[LostReason]:
    stmt = select(LostReason).order_by(col(LostReason.name), col(LostReason.id))
    if not include_inactive:
        stmt = stmt.where(col(LostReason.active).is_(True))
    return list((await session.execute(stmt)).scalars())


async def lost_reason_by_name(session: AsyncSession, name: str) -> LostReason | None:
    """The lost reason named ``name`` in any case (as ``pipeline_by_name``)."""
    stmt = select(LostReason).where(folded(col(LostReason.name)) == folded(name))
    return (await session.execute(stmt.order_by(col(LostReason.name)).limit(1))).scalars().first()


async def get_lost_reason(session: AsyncSession, reason_id: uuid.UUID) -> LostReason | None:
    return await session.get(LostReason, reason_id)


# -- summary ---------------------------------------------------------------------------


_SPLIT = 10**9


async def stage_totals(
    session: AsyncSession, visibility: Visibility, pipeline_id: uuid.UUID, by_owner: bool
) -> list[tuple[uuid.UUID, str, uuid.UUID | None, int, int]]:
    """``(stage, currency, owner or None, count, sum of value_minor)`` in one GROUP BY."""
    owner = col(Deal.owner_id) if by_owner else None
    columns: list[Any] = [col(Deal.stage_id), col(Deal.currency)]
    if owner is not None:
        columns.append(owner)
    # SQLite's SUM of integers fails past 2^63 (93 deals of the largest EUR value): the
    # values are summed in two parts, each far from it, and added up here exactly
    value = col(Deal.value_minor)
    stmt = (
        select(*columns, func.count(), func.sum(value // _SPLIT), func.sum(value % _SPLIT))
        .where(col(Deal.pipeline_id) == pipeline_id, visibility.where(col(Deal.owner_id)))
        .group_by(*columns)
    )
    out: list[tuple[uuid.UUID, str, uuid.UUID | None, int, int]] = []
    for row in (await session.execute(stmt)).all():
        values: tuple[Any, ...] = tuple(row)
        if owner is not None:
            stage_id, currency, owner_id, count, high, low = values
        else:
            (stage_id, currency, count, high, low), owner_id = values, None
        total = int(high or 0) * _SPLIT + int(low or 0)
        out.append((stage_id, currency, owner_id, int(count), total))
    return out
