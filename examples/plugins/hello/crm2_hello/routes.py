"""``/api/v1/hello``: thin routes that parse, authorize, call the service and shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from crm2_core.api import (
    ContextDep,
    Page,
    PageDep,
    Permissions,
    SessionDep,
    created,
    record_routes,
    require,
)
from crm2_hello import service
from crm2_hello.schemas import GreetingCreate, GreetingPublic, GreetingUpdate
from crm2_hookspecs import Principal

# The core refuses to mount a plugin router outside /api/v1/<plugin name>.
router = APIRouter(prefix="/api/v1/hello", tags=["hello"])
PERMISSIONS = Permissions(read="hello:read", write="hello:write", delete="hello:write")
HelloRead = Annotated[Principal, Depends(require(PERMISSIONS.read))]
HelloWrite = Annotated[Principal, Depends(require(PERMISSIONS.write))]


@router.post("/greetings", status_code=status.HTTP_201_CREATED, response_model=GreetingPublic)
async def create_greeting(
    body: GreetingCreate,
    user: HelloWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> GreetingPublic:
    """Greet someone; honours Idempotency-Key."""
    word: str = context.plugin_settings("hello").greeting
    greeting = await service.create_greeting(session, user, body, word)
    location = f"{router.prefix}/greetings/{greeting.id}"
    return created(response, location, GreetingPublic.model_validate(greeting))


@router.get("/greetings", response_model=Page[GreetingPublic])
async def list_greetings(
    user: HelloRead, session: SessionDep, page: PageDep
) -> Page[GreetingPublic]:
    """Greetings, oldest first, cursor-paginated."""
    rows, next_cursor = await service.list_greetings(session, user, page)
    return Page(items=[GreetingPublic.model_validate(g) for g in rows], next_cursor=next_cursor)


# GET (with its ETag) and PATCH (If-Match: 428 without, 412 when stale) by id.
record_routes(
    router,
    "/greetings/{greeting_id}",
    GreetingPublic.model_validate,
    response_model=GreetingPublic,
    permissions=PERMISSIONS,
    get=service.get_greeting,
    update=(GreetingUpdate, service.update_greeting),
    docs=("One greeting, with its ETag.", "Change a greeting's message; needs If-Match.", ""),
)
