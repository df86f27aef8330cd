"""``/api/v1/hello``: thin routes that parse, authorize, call the service and shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from crm2_core.api import (
    ContextDep,
    IfMatchDep,
    Page,
    PageDep,
    SessionDep,
    etag_for,
    require,
)
from crm2_hello.schemas import GreetingCreate, GreetingPublic, GreetingUpdate
from crm2_hello.service import HelloService
from crm2_hookspecs import Principal

# The core refuses to mount a plugin router outside /api/v1/<plugin name>.
router = APIRouter(prefix="/api/v1/hello", tags=["hello"])


async def hello_service(context: ContextDep) -> HelloService:
    return context.get(HelloService)


ServiceDep = Annotated[HelloService, Depends(hello_service)]
HelloRead = Annotated[Principal, Depends(require("hello:read"))]
HelloWrite = Annotated[Principal, Depends(require("hello:write"))]


@router.post("/greetings", status_code=status.HTTP_201_CREATED, response_model=GreetingPublic)
async def create_greeting(
    body: GreetingCreate,
    user: HelloWrite,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> GreetingPublic:
    """Greet someone; honours Idempotency-Key."""
    greeting = await service.create(session, user, body)
    response.headers["Location"] = f"{router.prefix}/greetings/{greeting.id}"
    response.headers["ETag"] = etag_for(greeting.version)
    return GreetingPublic.model_validate(greeting)


@router.get("/greetings", response_model=Page[GreetingPublic])
async def list_greetings(
    _: HelloRead, session: SessionDep, service: ServiceDep, page: PageDep
) -> Page[GreetingPublic]:
    """Greetings, oldest first, cursor-paginated."""
    rows, next_cursor = await service.page(session, page)
    return Page(items=[GreetingPublic.model_validate(g) for g in rows], next_cursor=next_cursor)


@router.get("/greetings/{greeting_id}", response_model=GreetingPublic)
async def get_greeting(
    greeting_id: uuid.UUID,
    _: HelloRead,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> GreetingPublic:
    """One greeting, with its ETag."""
    greeting = await service.get(session, greeting_id)
    response.headers["ETag"] = etag_for(greeting.version)
    return GreetingPublic.model_validate(greeting)


@router.patch("/greetings/{greeting_id}", response_model=GreetingPublic)
async def update_greeting(
    greeting_id: uuid.UUID,
    body: GreetingUpdate,
    _: HelloWrite,
    if_match: IfMatchDep,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> GreetingPublic:
    """Change a greeting's message; needs If-Match (428 without, 412 when stale)."""
    greeting = await service.update(session, greeting_id, if_match, body)
    response.headers["ETag"] = etag_for(greeting.version)
    return GreetingPublic.model_validate(greeting)
