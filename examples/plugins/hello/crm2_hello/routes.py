"""``/api/v1/hello``: the kit's route factories, so the routes stay declarations.

Each route parses, authorizes (the permission), calls the service and shapes the
answer (ETag on every record, Location on create).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from crm2_core.api import (
    APIRouter,
    ContextDep,
    Permissions,
    create_route,
    export_route,
    list_query,
    list_route,
    query_filters,
    record_routes,
)
from crm2_hello import service
from crm2_hello.repository import SORTS, GreetingFilters
from crm2_hello.schemas import GreetingCreate, GreetingPublic, GreetingUpdate

# The core refuses to mount a plugin router outside /api/v1/<plugin name>.
router = APIRouter(prefix="/api/v1/hello", tags=["hello"])
PERMISSIONS = Permissions(read="hello:read", write="hello:write", delete="hello:write")
# The list's query string (page, the GreetingFilters fields, the sort), read as one model;
# its OpenAPI comes from the fields. The export reads the same filters (query_filters).
greeting_query = list_query(GreetingFilters, SORTS)
greeting_filters = query_filters(GreetingFilters)


async def greeting_word(context: ContextDep) -> str:
    """The word a new greeting starts with (CRM2_HELLO_GREETING)."""
    word: str = context.plugin_settings("hello").greeting
    return word


public = GreetingPublic.model_validate

list_route(
    router, "/greetings", public, response_model=GreetingPublic, permission=PERMISSIONS.read,
    fetch=service.list_greetings, query=greeting_query, name="list_greetings",
    doc="Greetings the caller may see, filtered and sorted, cursor-paginated.",
)  # fmt: skip
create_route(
    router, "/greetings", public, response_model=GreetingPublic, permission=PERMISSIONS.write,
    body=GreetingCreate, create=service.create_greeting, location="/greetings/{id}",
    params={"word": Annotated[str, Depends(greeting_word)]}, name="create_greeting",
    doc="Greet someone; honours Idempotency-Key.",
)  # fmt: skip


# The list as a streamed CSV (same filters and sort), before /greetings/{greeting_id},
# which would otherwise take "export" for an id.
export_route(
    router, "/greetings/export", permission="hello:export", filters=greeting_filters,
    sorts=SORTS, export=service.export_greetings, columns=service.EXPORT, filename="greetings",
    doc="The greeting list as CSV (same filters and sort as the list), streamed.",
)  # fmt: skip


# GET (with its ETag), PATCH (If-Match: 428 without, 412 when stale) and DELETE by id.
record_routes(
    router, "/greetings/{greeting_id}", public, response_model=GreetingPublic,
    permissions=PERMISSIONS, get=service.get_greeting,
    update=(GreetingUpdate, service.update_greeting), delete=service.delete_greeting,
    docs=("One greeting, with its ETag.", "Change a greeting's message or owner; needs If-Match.",
          "Delete a greeting (If-Match checked when sent)."),
)  # fmt: skip
