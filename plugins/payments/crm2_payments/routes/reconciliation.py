"""Bank statements: upload (matched at once), list, lines, manual match and unmatch."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import File, Query, Response, UploadFile, status
from sqlalchemy import select
from sqlmodel import col

from crm2_core.api import (
    APIRouter,
    ContextDep,
    OptionalIfMatch,
    Page,
    PageDep,
    Repository,
    SessionDep,
    Sorts,
    from_minor,
    page_response,
    present,
)
from crm2_payments.errors import InvalidStatement, LineNotFound, StatementNotFound
from crm2_payments.models import Statement, StatementLine
from crm2_payments.routes.deps import MoneyKey, PaymentsReconcile
from crm2_payments.schemas.admin import LineMatch, LinePublic, LineStatus, StatementPublic
from crm2_payments.service import reconciliation as service
from crm2_payments.service.statements import COLUMNS, parse
from crm2_payments.visibility import RULES

router = APIRouter(prefix="/api/v1/payments", tags=["payments reconciliation"])
statements = Repository(
    Statement,
    StatementNotFound,
    sorts=Sorts(
        {"created_at": col(Statement.created_at)},
        id_column=col(Statement.id),
        default="-created_at",
    ),
    noun="statement",
)
lines = Repository(
    StatementLine,
    LineNotFound,
    sorts=Sorts(
        {"booked_on": col(StatementLine.booked_on)},
        id_column=col(StatementLine.id),
        default="booked_on",
    ),
    noun="statement line",
)


def line_public(line: StatementLine, seen: set[uuid.UUID] | None = None) -> LinePublic:
    """``seen``: the payments the caller may see; a line matched to another is shown
    without its payment and receipt ids (``None``: the caller's own match, all shown)."""
    values = line.model_dump(exclude={"amount_minor"})
    if seen is not None and line.payment_id not in seen:
        values["payment_id"] = values["allocation_id"] = None
    return LinePublic.model_validate(
        {**values, "amount": from_minor(line.amount_minor, line.currency)}
    )


def statement_public(s: Statement, counts: dict[str, int]) -> StatementPublic:
    return StatementPublic.model_validate({**s.model_dump(), **counts})


@router.post("/statements", response_model=StatementPublic, status_code=status.HTTP_201_CREATED)
async def upload_statement(
    key: MoneyKey,
    principal: PaymentsReconcile,
    session: SessionDep,
    context: ContextDep,
    response: Response,
    file: Annotated[UploadFile, File(description="CSV with " + ", ".join(COLUMNS))],
) -> StatementPublic:
    """Upload a bank statement CSV (Idempotency-Key required): new lines are matched and their
    money booked; lines known from an earlier upload are counted as duplicates, not added,
    and a file of known lines only is 409 payments-statement-duplicate (statement_id)."""
    max_rows: int = context.plugin_settings("payments").statement_max_rows
    content = await file.read()
    if not content:
        raise InvalidStatement("the file is empty")
    parsed = parse(content, max_rows)
    statement, counts = await service.upload(
        session, context, principal, file.filename or "", parsed
    )
    response.headers["Location"] = f"/api/v1/payments/statements/{statement.id}"
    return statement_public(statement, counts)


@router.get("/statements", response_model=Page[StatementPublic])
async def list_statements(
    principal: PaymentsReconcile, session: SessionDep, page: PageDep
) -> Response:
    """Uploaded statements, newest first."""
    rows, cursor = await statements.page(session, select(Statement), page)
    items = [statement_public(s, await service.counts_of(session, s.id)) for s in rows]
    return page_response(StatementPublic, items, cursor)


@router.get("/statements/{statement_id}", response_model=StatementPublic)
async def get_statement(
    statement_id: uuid.UUID, principal: PaymentsReconcile, session: SessionDep
) -> StatementPublic:
    """One statement with its lines' match counts."""
    row = await statements.get_or_404(session, RULES.visibility(None), statement_id)
    return statement_public(row, await service.counts_of(session, row.id))


@router.get("/statements/{statement_id}/lines", response_model=Page[LinePublic])
async def list_lines(
    statement_id: uuid.UUID,
    principal: PaymentsReconcile,
    session: SessionDep,
    page: PageDep,
    status: Annotated[LineStatus | None, Query()] = None,
) -> Response:
    """The statement's lines (``status`` filters: matched, unmatched, ambiguous); a line
    matched to a payment the caller cannot see shows null ``payment_id``/``allocation_id``."""
    await statements.get_or_404(session, RULES.visibility(None), statement_id)
    stmt = select(StatementLine).where(col(StatementLine.statement_id) == statement_id)
    if status is not None:
        stmt = stmt.where(col(StatementLine.status) == status)
    rows, cursor = await lines.page(session, stmt, page)
    seen = await service.payments_seen(session, principal, rows)
    return page_response(LinePublic, [line_public(r, seen) for r in rows], cursor)


@router.post("/statement-lines/{line_id}/match", response_model=LinePublic)
async def match_line(
    line_id: uuid.UUID,
    body: LineMatch,
    key: MoneyKey,
    principal: PaymentsReconcile,
    session: SessionDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> LinePublic:
    """Match a line to a payment by hand and book its amount (Idempotency-Key required)."""
    line = await service.manual_match(session, principal, line_id, body.payment_id, if_match)
    return present(response, line_public(line))


@router.post("/statement-lines/{line_id}/unmatch", response_model=LinePublic)
async def unmatch_line(
    line_id: uuid.UUID,
    key: MoneyKey,
    principal: PaymentsReconcile,
    session: SessionDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> LinePublic:
    """Undo a match; the receipt it booked is taken back (Idempotency-Key required)."""
    line = await service.unmatch(session, principal, line_id, if_match)
    return present(response, line_public(line))
