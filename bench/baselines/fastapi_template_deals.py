"""Baseline for scenario 16: deals as the official FastAPI full-stack template would serve them.

Written here from the template's idea (not copied from it): plain FastAPI with
``def`` routes (run in the thread pool), a synchronous SQLModel ``Session`` per
request from a dependency (``SessionDep``), ``OAuth2PasswordBearer`` + a PyJWT check
that loads the user row on every request (``CurrentUser``), SQLModel ``*Create`` /
``*Public`` models and ``response_model`` on each route, an engine with SQLAlchemy's
default pool, psycopg 3. The entity is crm2's deal, mapped onto crm2's own
``deals_deal`` table, so both servers read and write the same rows:

* ``POST /api/v1/deals/deals``: ``Deal.model_validate(body, update=…)``, ``add``,
  ``commit``, ``refresh`` (the template's create). Pipeline and stage are the ones crm2
  resolved for the same body (given at start-up); the owner is the caller.
* ``GET /api/v1/deals/deals?status=…&limit=…&cursor=…``: the same filter, order and
  keyset condition as crm2's list, through ``select(Deal)``; crm2's cursor format, so
  one cursor works against both. The template's ``count`` query is left out: crm2's
  list returns no total either.

The token is crm2's access token (HS256, issuer ``crm2``, audience ``crm2-api``): the
template's ``jwt.decode`` then ``session.get(User, sub)`` and the active check.

Configuration from the environment: ``BENCH_SQLA_URL`` (``postgresql+psycopg://…``),
``BENCH_JWT_SECRET``, ``BENCH_PIPELINE_ID``, ``BENCH_STAGE_ID``. Served by the harness
with one uvicorn worker::

    python -m uvicorn --app-dir bench/baselines fastapi_template_deals:app --host 127.0.0.1
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Generator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from pydantic import ValidationError
from sqlalchemy import BigInteger, Column, DateTime, String, tuple_
from sqlmodel import Field, Session, SQLModel, create_engine, select

SECRET_KEY = os.environ["BENCH_JWT_SECRET"]
ALGORITHM = "HS256"
PIPELINE_ID = uuid.UUID(os.environ.get("BENCH_PIPELINE_ID", str(uuid.UUID(int=0))))
STAGE_ID = uuid.UUID(os.environ.get("BENCH_STAGE_ID", str(uuid.UUID(int=0))))

engine = create_engine(os.environ["BENCH_SQLA_URL"])


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


# -- models --------------------------------------------------------------------------


class User(SQLModel, table=True):
    __tablename__ = "auth_user"

    id: uuid.UUID = Field(primary_key=True)
    email: str
    full_name: str = ""
    is_active: bool = True


class DealBase(SQLModel):
    title: str = Field(min_length=1, max_length=300)
    client_id: uuid.UUID


class DealCreate(DealBase):
    value: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class Deal(DealBase, table=True):
    __tablename__ = "deals_deal"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    status: str = "open"
    value_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="EUR", sa_column=Column(String(3), nullable=False))
    owner_id: uuid.UUID
    source: str = ""
    expected_close_date: date | None = None
    lost_reason_id: uuid.UUID | None = None
    lost_reason: str | None = None
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    stage_entered_at: datetime = Field(default_factory=_now, sa_column=_ts())
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts())
    version: int = 1


class DealPublic(DealBase):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    status: str
    value: Decimal
    currency: str
    owner_id: uuid.UUID
    source: str
    expected_close_date: date | None
    lost_reason_id: uuid.UUID | None
    lost_reason: str | None
    closed_at: datetime | None
    stage_entered_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int


class DealsPublic(SQLModel):
    items: list[DealPublic]
    next_cursor: str | None


class TokenPayload(SQLModel):
    sub: str | None = None


def to_public(deal: Deal) -> DealPublic:
    data = deal.model_dump(exclude={"value_minor"})
    return DealPublic(**data, value=Decimal(deal.value_minor).scaleb(-2))


# -- dependencies --------------------------------------------------------------------


def get_db() -> Generator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
reusable_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login")
TokenDep = Annotated[str, Depends(reusable_oauth2)]


def get_current_user(session: SessionDep, token: TokenDep) -> User:
    try:
        payload = jwt.decode(
            token, SECRET_KEY, algorithms=[ALGORITHM], audience="crm2-api", issuer="crm2"
        )
        token_data = TokenPayload(**payload)
    except (jwt.InvalidTokenError, ValidationError):
        raise HTTPException(status_code=403, detail="Could not validate credentials") from None
    user = session.get(User, uuid.UUID(token_data.sub or str(uuid.UUID(int=0))))
    if not user:
        raise HTTPException(status_code=404, detail="User not found")
    if not user.is_active:
        raise HTTPException(status_code=400, detail="Inactive user")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


# -- cursor (crm2's format: base64url of [scope, [{"t": iso}, {"u": uuid}]]) -----------


def encode_cursor(updated_at: datetime, deal_id: uuid.UUID) -> str:
    raw = json.dumps([{"t": updated_at.isoformat()}, {"u": str(deal_id)}]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    outer = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if len(outer) == 2 and isinstance(outer[0], str):
        outer = outer[1]
    moment, ident = outer
    return datetime.fromisoformat(moment["t"]), uuid.UUID(ident["u"])


# -- routes --------------------------------------------------------------------------

app = FastAPI(title="template-style deals")


@app.post("/api/v1/deals/deals", response_model=DealPublic, status_code=201)
def create_deal(
    *, session: SessionDep, current_user: CurrentUser, deal_in: DealCreate
) -> DealPublic:
    deal = Deal.model_validate(
        deal_in,
        update={
            "owner_id": current_user.id,
            "pipeline_id": PIPELINE_ID,
            "stage_id": STAGE_ID,
            "value_minor": int((deal_in.value or Decimal(0)) * 100),
            "currency": deal_in.currency or "EUR",
        },
    )
    session.add(deal)
    session.commit()
    session.refresh(deal)
    return to_public(deal)


@app.get("/api/v1/deals/deals", response_model=DealsPublic)
def read_deals(
    session: SessionDep,
    current_user: CurrentUser,
    status: str = "open",
    limit: int = 50,
    cursor: str | None = None,
) -> DealsPublic:
    limit = min(limit, 200)
    statement = select(Deal).where(Deal.status == status)
    if cursor:
        moment, ident = decode_cursor(cursor)
        statement = statement.where(tuple_(Deal.updated_at, Deal.id) < tuple_(moment, ident))
    statement = statement.order_by(Deal.updated_at.desc(), Deal.id.desc()).limit(limit + 1)  # type: ignore[attr-defined]
    deals = list(session.exec(statement).all())
    next_cursor = None
    if len(deals) > limit:
        deals = deals[:limit]
        next_cursor = encode_cursor(deals[-1].updated_at, deals[-1].id)
    return DealsPublic(items=[to_public(d) for d in deals], next_cursor=next_cursor)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
