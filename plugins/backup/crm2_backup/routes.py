"""Admin routes under ``/api/v1/backup``: sets, runs, drills, targets, status; run, verify, prune.

A restore is a command-line operation (``crm2 backup restore``), never an HTTP one:
it writes into databases and brokers, and an operator should be at the console.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Response, status

from crm2_backup.repository import (
    artifacts,
    get_drill,
    get_run,
    get_set,
    latest_completed,
    latest_drill,
    latest_verified,
    page_drills,
    page_runs,
    page_sets,
)
from crm2_backup.schemas import (
    ArtifactPublic,
    DrillPublic,
    PrunePublic,
    RunKind,
    RunPublic,
    SetDetail,
    SetPublic,
    SetStatus,
    StatusPublic,
    TargetPublic,
)
from crm2_backup.service import retention
from crm2_backup.service.clock import trusted_until
from crm2_backup.service.queued import request_backup_now, request_drill_now
from crm2_core.api import (
    APIRouter,
    ContextDep,
    Page,
    PageDep,
    SessionDep,
    acting_user,
    page_response,
    require,
    utcnow,
)
from crm2_hookspecs import Principal

BackupRead = Annotated[Principal, Depends(require("backup:read"))]
BackupRun = Annotated[Principal, Depends(require("backup:run"))]

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])
BASE = "/api/v1/backup"


def _accepted(what: str, poll: str) -> dict[int | str, dict[str, Any]]:
    """The ``202`` of a background job as OpenAPI declares it: where to poll, and how soon."""
    return {
        202: {
            "description": f"Accepted: {what}; poll Location until `done`",
            "headers": {
                "Location": {"description": poll, "schema": {"type": "string"}},
                "Retry-After": {
                    "description": "seconds before the first poll",
                    "schema": {"type": "integer"},
                },
            },
        }
    }


_POLLED: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Retry-After": {
                "description": "while not `done`: seconds before the next poll",
                "schema": {"type": "integer"},
            }
        }
    }
}


async def _detail(session: SessionDep, set_id: uuid.UUID) -> SetDetail:
    row = await get_set(session, set_id)
    items = [ArtifactPublic.model_validate(a) for a in await artifacts(session, set_id)]
    return SetDetail.model_validate(
        {**SetPublic.model_validate(row).model_dump(), "manifest": row.manifest, "artifacts": items}
    )


@router.get("/sets", response_model=Page[SetPublic])
async def list_sets(
    _: BackupRead,
    session: SessionDep,
    page: PageDep,
    status_: Annotated[SetStatus | None, Query(alias="status")] = None,
) -> Response:
    """Backup sets, newest first."""
    rows, cursor = await page_sets(session, page, status_)
    return page_response(SetPublic, rows, cursor)


@router.post(
    "/sets",
    response_model=SetPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_accepted("the set is queued (or the one underway)", "GET /sets/{set_id}"),
)
async def create_set(
    principal: BackupRun,
    context: ContextDep,
    session: SessionDep,
    response: Response,
    verify: Annotated[bool, Query(description="drill the new set once it is written")] = False,
) -> SetPublic:
    """Back up every chosen target now, in the background: ``202`` with the queued set.

    Poll ``Location`` (``GET /sets/{set_id}``) until ``done``: ``state`` goes queued →
    running → completed (or verifying → verified | verify_failed with ``verify=true``)
    | failed, and ``progress`` shows each target's phase. One backup at a time: while
    a set is queued or running this answers that set. An unknown target in
    ``CRM2_BACKUP_TARGETS`` is a 422 and makes no set.
    """
    row = await request_backup_now(context, session, acting_user(principal), and_verify=verify)
    response.headers["Location"] = f"{BASE}/sets/{row.id}"
    response.headers["Retry-After"] = "1"
    return SetPublic.model_validate(row)


@router.get("/sets/{set_id}", response_model=SetDetail, responses=_POLLED)
async def get_one_set(
    set_id: uuid.UUID, _: BackupRead, session: SessionDep, response: Response
) -> SetDetail:
    """One set with its manifest, artefacts and progress (``Retry-After`` while not ``done``)."""
    detail = await _detail(session, set_id)
    if not detail.done:
        response.headers["Retry-After"] = "2"
    return detail


@router.post(
    "/sets/{set_id}/verify",
    response_model=RunPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_accepted("the drill is queued (or the one underway)", "GET /runs/{run_id}"),
)
async def verify_set(
    set_id: uuid.UUID, _: BackupRun, context: ContextDep, session: SessionDep, response: Response
) -> RunPublic:
    """Restore drill of a completed set, in the background: ``202`` with the queued run.

    Poll ``Location`` (``GET /runs/{run_id}``) until ``done``: ``status`` goes queued →
    running → ok | failed, and ``drill_id`` names the drill (``GET /drills/{drill_id}``:
    RTO, RPO, per-target results). One drill of a set at a time: while one is queued or
    running this answers that run. A set that is not completed is a 409.
    """
    run = await request_drill_now(context, session, set_id)
    response.headers["Location"] = f"{BASE}/runs/{run.id}"
    response.headers["Retry-After"] = "1"
    return RunPublic.model_validate(run)


@router.get("/drills", response_model=Page[DrillPublic])
async def list_drills(
    _: BackupRead, session: SessionDep, page: PageDep, set_id: uuid.UUID | None = None
) -> Response:
    """Restore drills, newest first, with their RTO and RPO."""
    rows, cursor = await page_drills(session, page, set_id)
    return page_response(DrillPublic, rows, cursor)


@router.get("/drills/{drill_id}", response_model=DrillPublic)
async def get_one_drill(drill_id: uuid.UUID, _: BackupRead, session: SessionDep) -> DrillPublic:
    """One restore drill."""
    return DrillPublic.model_validate(await get_drill(session, drill_id))


@router.get("/runs", response_model=Page[RunPublic])
async def list_runs(
    _: BackupRead, session: SessionDep, page: PageDep, kind: RunKind | None = None
) -> Response:
    """Every backup, verify, restore and prune operation, newest first."""
    rows, cursor = await page_runs(session, page, kind)
    return page_response(RunPublic, rows, cursor)


@router.get("/runs/{run_id}", response_model=RunPublic, responses=_POLLED)
async def get_one_run(
    run_id: uuid.UUID, _: BackupRead, session: SessionDep, response: Response
) -> RunPublic:
    """One operation, e.g. a drill being polled (``Retry-After`` while not ``done``)."""
    run = RunPublic.model_validate(await get_run(session, run_id))
    if not run.done:
        response.headers["Retry-After"] = "2"
    return run


@router.post("/prune", response_model=PrunePublic)
async def prune_sets(_: BackupRun, context: ContextDep) -> PrunePublic:
    """Apply the retention policy now: the sets whose artefacts were deleted."""
    return PrunePublic(pruned=await retention.prune(context))


@router.get("/targets", response_model=list[TargetPublic])
async def list_targets(_: BackupRead, context: ContextDep) -> list[TargetPublic]:
    """The targets this deployment can back up, and whether CRM2_BACKUP_TARGETS chose them."""
    wanted = context.plugin_settings("backup").target_names()
    rows = []
    for plugin, target in context.plugins.collect("crm2_backup_targets", context=context):
        rows.append(
            TargetPublic(
                name=target.name, plugin=plugin, chosen=wanted is None or target.name in wanted
            )
        )
    return rows


@router.get("/status", response_model=StatusPublic)
async def backup_status(_: BackupRead, context: ContextDep, session: SessionDep) -> StatusPublic:
    """The latest set, the latest verified set, RPO and the last drill's RTO."""
    settings = context.plugin_settings("backup")
    latest = await latest_completed(session, trusted_until())
    verified = await latest_verified(session, trusted_until())
    drill = await latest_drill(session)
    return StatusPublic(
        latest_set=None if latest is None else SetPublic.model_validate(latest),
        latest_verified_set=None if verified is None else SetPublic.model_validate(verified),
        rpo_seconds=None if verified is None else (utcnow() - verified.started_at).total_seconds(),
        last_drill=None if drill is None else DrillPublic.model_validate(drill),
        schedule=settings.schedule,
        verify_schedule=settings.verify_schedule,
    )


def routers() -> list[APIRouter]:
    return [router]
