"""``POST <path>`` (a CSV upload) and ``GET <path>/{job_id}`` for a plugin's :class:`CsvImport`.

::

    import_routes(
        router, "/clients/import", CLIENT_IMPORT, permission="deals:import",
        max_rows=lambda c: c.plugin_settings("deals").import_max_rows,
        background_rows=lambda c: c.plugin_settings("deals").import_background_rows,
        doc="Upsert clients from CSV by e-mail or tax id.",
    )
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.auth.deps import require
from crm2_core.context import AppContext
from crm2_core.http.deps import get_context, get_session
from crm2_core.http.problems import problem_response
from crm2_core.kit.import_jobs import get_job, start_job
from crm2_core.kit.imports import (
    CsvImport,
    ImportJobPublic,
    ImportReport,
    import_now,
    read_csv,
    refusal,
)
from crm2_core.kit.routes import _endpoint, _parameter
from crm2_hookspecs import Principal

Setting = Callable[[AppContext], int]


REFUSED = (
    "Nothing was written: the file cannot be read (`csv-invalid`), or rows have errors and "
    "`partial` is off (`import-refused`, with the ImportReport in `report`)"
)


def import_routes(
    router: APIRouter,
    path: str,
    spec: CsvImport[Any],
    *,
    permission: str,
    max_rows: Setting,
    background_rows: Setting,
    name: str | None = None,
    doc: str = "Import records from CSV.",
) -> None:
    """Add the upload route and its job status route to ``router``."""
    noun = name or spec.name.rsplit(".", 1)[-1]
    who = _parameter("principal", Annotated[Principal, Depends(require(permission))])
    session_p = _parameter(
        "session", Annotated[AsyncSession, Depends(get_session, scope="function")]
    )
    context_p = _parameter("context", Annotated[AppContext, Depends(get_context)])
    file_p = _parameter(
        "file", Annotated[UploadFile, File(description="CSV: " + ",".join(spec.columns))]
    )
    flags = [
        _parameter("dry_run", Annotated[bool, Query(description="report only, write nothing")],
                   False),
        _parameter("partial", Annotated[bool, Query(
            description="write the good rows of a file with errors")], False),
        _parameter("background", Annotated[bool | None, Query(
            description="run as a background job (202 + Location); omit to decide by size")],
            None),
    ]  # fmt: skip

    async def upload(
        principal: Principal,
        session: AsyncSession,
        context: AppContext,
        file: UploadFile,
        dry_run: bool,
        partial: bool,
        background: bool | None,
    ) -> Any:
        ignored: list[str] = []
        rows = read_csv(
            await file.read(),
            required=spec.required,
            columns=spec.columns,
            max_rows=max_rows(context),
            error=spec.file_error,
            ignored=ignored,
        )
        if background is None:
            background = len(rows) > background_rows(context)
        if not background:
            report = await import_now(
                session, principal, spec, rows, dry_run=dry_run, partial=partial, context=context
            )
            report.ignored_columns = ignored
            if not report.applied and not report.dry_run:
                raise refusal(report)
            return report
        job = start_job(context, session, principal, spec, rows, dry_run=dry_run, partial=partial,
                        ignored_columns=ignored)  # fmt: skip
        body = ImportJobPublic.of(job).model_dump(mode="json")
        location = f"{router.prefix}{path}/{job.id}"
        return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED,
                            headers={"Location": location})  # fmt: skip

    router.add_api_route(
        path,
        _endpoint(upload, [who, session_p, context_p, file_p, *flags], ImportReport,
                  doc + " Large files run as a background job (202 + Location)."),
        methods=["POST"],
        response_model=ImportReport,
        responses={202: {"model": ImportJobPublic,
                         "description": "A background job: poll its Location"},
                   422: {**problem_response(422), "description": REFUSED}},
        name=f"import_{noun}",
    )  # fmt: skip

    async def status_of(
        principal: Principal, session: AsyncSession, job_id: uuid.UUID, response: Response
    ) -> ImportJobPublic:
        job = await get_job(session, principal, spec, job_id)
        if job.status in ("queued", "running"):
            response.headers["Retry-After"] = "1"
        return ImportJobPublic.of(job)

    router.add_api_route(
        f"{path}/{{job_id}}",
        _endpoint(status_of, [who, session_p, _parameter("job_id", uuid.UUID),
                              _parameter("response", Response)], ImportJobPublic,
                  "A background import: progress, counts and row errors."),
        methods=["GET"],
        response_model=ImportJobPublic,
        name=f"get_{noun}_import_job",
    )  # fmt: skip
