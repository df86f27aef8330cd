"""Every query hello runs: the kit's repository, plus the list's filters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    Filter,
    IsoDateTime,
    PageParams,
    Repository,
    Sorts,
    Visibility,
    at_least,
    contains_text,
    eq,
    where_all,
)
from crm2_hello.errors import GreetingNotFound
from crm2_hello.models import Greeting

# ?sort= accepts exactly these names (and "-name" for descending); the id, always
# last, makes the order total, so the cursor is exact.
SORTS = Sorts(
    {"created_at": col(Greeting.created_at), "name": col(Greeting.name)},
    id_column=col(Greeting.id),
    default="created_at",
)
# get-visible-or-404, insert, versioned update and delete; ``owner`` is the column
# the caller's visibility applies to, in every query.
greetings = Repository(Greeting, GreetingNotFound, owner=col(Greeting.owner_id), sorts=SORTS)


@dataclass(frozen=True)
class GreetingFilters:
    """The list's and the export's query parameters: ``query_filters`` reads them."""

    owner: Annotated[uuid.UUID | None, Filter("owner's user id")] = None
    q: Annotated[str | None, Filter("in the name", max_length=100)] = None
    created_since: IsoDateTime | None = None


def greeting_select(visibility: Visibility, f: GreetingFilters) -> Select[Any]:
    return where_all(
        greetings.visible(visibility),
        eq(col(Greeting.owner_id), f.owner),
        contains_text(f.q, col(Greeting.name)),
        at_least(col(Greeting.created_at), f.created_since),
    )


async def list_greetings(
    session: AsyncSession,
    visibility: Visibility,
    filters: GreetingFilters,
    sort: str | None,
    page: PageParams,
) -> tuple[list[Greeting], str | None]:
    return await greetings.page(session, greeting_select(visibility, filters), page, sort=sort)
