"""``query_filters`` and ``list_query``: a list's query read from the filter dataclass.

The OpenAPI it yields (types, enums, limits, descriptions, renamed and repeated
parameters), what it builds from a query string, and bad input as a 422
``application/problem+json`` naming the parameter. A plain FastAPI app with the
core's problem handlers: no database, so it is cheap.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import column

from crm2_core.api import (
    DEFAULT_LIMIT,
    Derived,
    Filter,
    IsoDate,
    IsoDateTime,
    LinkIdFilter,
    LinkKindFilter,
    ListQuery,
    PageDep,
    Sorts,
    Unprocessable,
    list_query,
    query_filters,
)
from crm2_core.http.problems import install_problem_handlers
from crm2_core.http.request_guard import guard_request
from crm2_core.http.routing import APIRouter as Crm2Router
from crm2_core.http.routing import solving_dependant

Colour = Literal["red", "green", "blue"]


@dataclass(frozen=True)
class WidgetFilters:
    owner: Annotated[uuid.UUID | None, Filter("owner's user id")] = None
    colours: Annotated[tuple[Colour, ...], Filter("repeat for several", name="colour")] = ()
    is_open: Annotated[bool | None, Filter("omit for both", name="open")] = None
    size: Annotated[int | None, Filter(ge=1, le=10)] = None
    since: IsoDateTime | None = None
    day: IsoDate | None = None
    link_kind: LinkKindFilter = None
    link_id: LinkIdFilter = None
    q: Annotated[str | None, Filter("in the name", min_length=1, max_length=20)] = None
    overdue: bool = False
    seen_by: Annotated[str | None, Derived] = None


def _finish(filters: WidgetFilters, caller: str, strict: bool = False) -> WidgetFilters:
    if strict and filters.size is None:
        raise Unprocessable("strict needs a size")
    return replace(filters, seen_by=caller)


async def _caller() -> str:
    return "ada"


plain = query_filters(WidgetFilters)
finished = query_filters(
    WidgetFilters,
    params={"caller": Annotated[str, Depends(_caller)], "strict": (bool, False)},
    finish=_finish,
)


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/widgets")
    async def widgets(filters: Annotated[WidgetFilters, Depends(plain)]) -> dict[str, Any]:
        return {k: str(v) if v is not None else None for k, v in asdict(filters).items()}

    @app.get("/finished")
    async def finished_widgets(
        filters: Annotated[WidgetFilters, Depends(finished)],
    ) -> dict[str, Any]:
        return {"seen_by": filters.seen_by, "size": filters.size}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _parameters(path: str) -> dict[str, dict[str, Any]]:
    doc = _app().openapi()
    return {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}


def test_openapi_takes_types_enums_limits_and_descriptions_from_the_fields() -> None:
    params = _parameters("/widgets")
    assert list(params) == [
        "owner",
        "colour",
        "open",
        "size",
        "since",
        "day",
        "link_kind",
        "link_id",
        "q",
        "overdue",
    ]  # declared order; renamed ones under their query name; the derived one absent
    assert all(p["in"] == "query" and not p["required"] for p in params.values())
    owner = params["owner"]
    assert owner["description"] == "owner's user id"
    assert {"type": "string", "format": "uuid"} in owner["schema"]["anyOf"]
    colour = params["colour"]["schema"]["anyOf"][0]
    assert colour["type"] == "array"
    assert colour["items"] == {"enum": ["red", "green", "blue"], "type": "string"}
    assert params["colour"]["description"] == "repeat for several"
    assert params["open"]["description"] == "omit for both"
    size = params["size"]["schema"]["anyOf"][0]
    assert (size["minimum"], size["maximum"]) == (1, 10)
    q = params["q"]["schema"]["anyOf"][0]
    assert (q["minLength"], q["maxLength"]) == (1, 20)
    kind = params["link_kind"]["schema"]["anyOf"][0]
    assert kind["maxLength"] == 64 and kind["pattern"].startswith("^[a-z]")
    assert params["overdue"]["schema"] == {"type": "boolean", "default": False, "title": "Overdue"}


def test_params_that_are_dependencies_stay_out_of_the_openapi() -> None:
    params = _parameters("/finished")
    assert "caller" not in params and "seen_by" not in params
    assert params["strict"]["schema"]["type"] == "boolean"


async def test_a_query_string_becomes_the_filter_object(client: httpx.AsyncClient) -> None:
    owner = uuid.uuid4()
    response = await client.get(
        "/widgets",
        params=[
            ("owner", str(owner)),
            ("colour", "red"),
            ("colour", "blue"),
            ("open", "false"),
            ("since", "2026-01-02T03:04:05"),
            ("day", "2026-01-02"),
            ("link_kind", "deals.deal"),
            ("q", "bolt"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["owner"] == str(owner)
    assert body["colours"] == "('red', 'blue')"  # a tuple, whatever the query gave
    assert body["is_open"] == "False"
    assert body["since"] == str(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))  # naive → UTC
    assert body["day"] == "2026-01-02"
    assert body["link_kind"] == "deals.deal" and body["q"] == "bolt"
    empty = (await client.get("/widgets")).json()
    assert empty["colours"] == "()" and empty["owner"] is None and empty["overdue"] == "False"


async def test_finish_gets_the_params_and_may_refuse(client: httpx.AsyncClient) -> None:
    ok = await client.get("/finished", params={"size": 3, "strict": "true"})
    assert ok.json() == {"seen_by": "ada", "size": 3}
    refused = await client.get("/finished", params={"strict": "true"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail"] == "strict needs a size"


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ({"owner": "not-a-uuid"}, ["query", "owner"]),
        ({"colour": "purple"}, ["query", "colour", 0]),
        ({"open": "maybe"}, ["query", "open"]),
        ({"size": "11"}, ["query", "size"]),
        ({"since": "yesterday"}, ["query", "since"]),
        ({"day": "1700000000"}, ["query", "day"]),  # ISO only, not a Unix time
        ({"link_kind": "Deals"}, ["query", "link_kind"]),
        ({"link_id": "x" * 65}, ["query", "link_id"]),
        ({"q": "x" * 21}, ["query", "q"]),
    ],
)
async def test_bad_input_is_a_422_problem_naming_the_parameter(
    client: httpx.AsyncClient, query: dict[str, str], loc: list[Any]
) -> None:
    response = await client.get("/widgets", params=query)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == loc


def test_declaration_mistakes_fail_at_import_time() -> None:
    @dataclass(frozen=True)
    class NoDefault:
        owner: uuid.UUID

    with pytest.raises(TypeError, match="needs a default"):
        query_filters(NoDefault)

    @dataclass(frozen=True)
    class Clash:
        owner: uuid.UUID | None = None

    with pytest.raises(TypeError, match="also fields"):
        query_filters(Clash, params={"owner": str}, finish=lambda f, owner: f)
    with pytest.raises(TypeError, match="give finish"):
        query_filters(Clash, params={"other": str})
    with pytest.raises(TypeError, match="not a dataclass"):
        query_filters(int)


# -- list_query: a list's whole query string as one model ------------------------------------

SORTS = Sorts(
    {"name": column("name"), "size": column("size")}, id_column=column("id"), default="name"
)
widget_query = list_query(WidgetFilters, SORTS)
finished_query = list_query(
    WidgetFilters,
    SORTS,
    params={"caller": Annotated[str, Depends(_caller)], "strict": (bool, False)},
    finish=_finish,
)
WidgetListQuery = Annotated[ListQuery[WidgetFilters], Depends(widget_query)]
FinishedListQuery = Annotated[ListQuery[WidgetFilters], Depends(finished_query)]
PAGE_MAX_LIMIT = 100


def _list_app(crm2_router: bool = False) -> FastAPI:
    """Routes reading a list query, behind the core's request guard (unknown names: 400);
    with ``crm2_router``, declared on crm2's ``APIRouter``, whose handlers let the list
    query read the query string itself (``OWN_QUERY``) instead of FastAPI."""
    app = FastAPI(dependencies=[Depends(guard_request)])
    app.state.context = SimpleNamespace(settings=SimpleNamespace(page_max_limit=PAGE_MAX_LIMIT))
    install_problem_handlers(app)
    router = Crm2Router() if crm2_router else app.router

    @router.get("/list")
    async def widget_list(query: WidgetListQuery) -> dict[str, Any]:
        filters = {k: str(v) if v is not None else None for k, v in asdict(query.filters).items()}
        page = {"limit": query.page.limit, "cursor": query.page.cursor}
        return {"filters": filters, "sort": query.sort, "page": page}

    @router.get("/finished")
    async def finished_list(query: FinishedListQuery) -> dict[str, Any]:
        return {"seen_by": query.filters.seen_by, "size": query.filters.size}

    @router.get("/separate")  # what list_query replaces: one dependency per parameter group
    async def separate(
        page: PageDep,
        filters: Annotated[WidgetFilters, Depends(plain)],
        sort: Annotated[str, Depends(SORTS.dependency)],
    ) -> None:
        return None

    if crm2_router:
        app.include_router(router)
    return app


@pytest.fixture(params=["fastapi", "crm2"])
async def lists(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_list_app(crm2_router=request.param == "crm2"))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def test_list_query_openapi_is_that_of_the_separate_dependencies() -> None:
    paths = _list_app().openapi()["paths"]
    one = paths["/list"]["get"]["parameters"]
    assert one == paths["/separate"]["get"]["parameters"]  # same order, schemas, descriptions
    names = [p["name"] for p in one]
    assert names[:2] == ["limit", "cursor"] and names[-1] == "sort" and "colour" in names
    assert _list_app(crm2_router=True).openapi() == _list_app().openapi()


def test_a_crm2_route_reads_the_list_query_without_fastapis_extraction() -> None:
    """The route keeps the query model (OpenAPI, request guard); its handler solves a
    dependant without it, the list query reading the query string itself."""
    router = Crm2Router()

    @router.get("/list")
    async def widget_list(query: WidgetListQuery) -> None:
        return None

    @router.get("/finished")
    async def finished_list(query: FinishedListQuery) -> None:
        return None

    routes: dict[str, Any] = {r.path: r for r in router.routes}  # type: ignore[attr-defined]
    route = routes["/list"]
    (query,) = [d for d in route.dependant.dependencies if d.call is widget_query]
    assert [f.name for f in query.query_params] == ["query"]
    (solved,) = [
        d for d in solving_dependant(route.dependant).dependencies if d.call is widget_query
    ]
    assert solved.query_params == []
    finished = routes["/finished"]  # ``strict`` is FastAPI's: it reads the model too
    (read,) = [d for d in finished.dependant.dependencies if d.call is finished_query]
    assert solving_dependant(finished.dependant) is finished.dependant
    assert [f.name for f in read.query_params] == ["query", "strict"]


async def test_list_query_reads_page_filters_and_sort_at_once(
    lists: httpx.AsyncClient,
) -> None:
    body = (await lists.get("/list")).json()
    assert body["page"] == {"limit": DEFAULT_LIMIT, "cursor": None}
    assert body["sort"] == "name" and body["filters"]["colours"] == "()"
    asked = [("colour", "red"), ("colour", "blue"), ("since", "2026-01-02T03:04:05")]
    asked += [("sort", "-size"), ("limit", "5"), ("cursor", "abc"), ("size", "3")]
    body = (await lists.get("/list", params=asked)).json()
    assert body["filters"]["colours"] == "('red', 'blue')"  # repeated: a tuple, in order
    assert body["filters"]["since"] == str(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert body["filters"]["size"] == "3"
    assert body["sort"] == "-size" and body["page"] == {"limit": 5, "cursor": "abc"}
    capped = (await lists.get("/list", params={"limit": 10_000})).json()
    assert capped["page"]["limit"] == PAGE_MAX_LIMIT


async def test_list_query_unknown_parameter_is_a_400_naming_it(
    lists: httpx.AsyncClient,
) -> None:
    response = await lists.get("/list", params={"colour": "red", "stauts": "won"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["parameters"] == ["stauts"]
    takes = (
        "colour, cursor, day, limit, link_id, link_kind, open, overdue, owner, q, since, size, sort"
    )
    assert problem["detail"].endswith(f"this endpoint takes: {takes}")  # the model's fields


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": "many"}, ["query", "limit"]),
        ({"cursor": "c" * 1025}, ["query", "cursor"]),
        ({"sort": "colour"}, ["query", "sort"]),
        ({"colour": "purple"}, ["query", "colour", 0]),
        ({"owner": "not-a-uuid"}, ["query", "owner"]),
    ],
)
async def test_list_query_bad_input_is_a_422_problem_naming_the_parameter(
    lists: httpx.AsyncClient, query: dict[str, str], loc: list[Any]
) -> None:
    response = await lists.get("/list", params=query)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == loc


async def test_list_query_reports_every_bad_parameter_in_declared_order(
    lists: httpx.AsyncClient,
) -> None:
    response = await lists.get("/list", params={"sort": "x", "colour": "purple", "limit": "0"})
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    assert locs == [["query", "limit"], ["query", "colour", 0], ["query", "sort"]]


async def test_list_query_finish_runs_once_every_parameter_is_valid(
    lists: httpx.AsyncClient,
) -> None:
    ok = await lists.get("/finished", params={"size": 3, "strict": "true"})
    assert ok.json() == {"seen_by": "ada", "size": 3}
    refused = await lists.get("/finished", params={"strict": "true"})
    assert refused.status_code == 422 and refused.json()["detail"] == "strict needs a size"
    # Pinned precedence: a bad page or sort is named before finish runs. With separate
    # dependencies finish ran first and its refusal hid the bad limit.
    both = await lists.get("/finished", params={"strict": "true", "limit": "0"})
    assert both.status_code == 422
    assert [e["loc"] for e in both.json()["errors"]] == [["query", "limit"]]


def test_list_query_declaration_mistakes_fail_at_import_time() -> None:
    @dataclass(frozen=True)
    class Clash:
        limit: int | None = None

    with pytest.raises(TypeError, match="pagination or sort"):
        list_query(Clash)

    @dataclass(frozen=True)
    class Dependent:
        caller: Annotated[str, Depends(_caller)]

    with pytest.raises(TypeError, match="is a dependency"):
        list_query(Dependent)
    with pytest.raises(TypeError, match="finish"):
        list_query(None, params={"other": str})


@dataclass(frozen=True)
class StayFilters:
    stay_from: IsoDate | None = None
    stay_to: Annotated[IsoDate | None, Filter(name="stay_until")] = None  # its pair, renamed
    seen_from: IsoDateTime | None = None
    seen_to: IsoDateTime | None = None


stay_filters = query_filters(StayFilters)
stay_query = list_query(StayFilters)


def _stays_app() -> FastAPI:
    app = FastAPI()
    app.state.context = SimpleNamespace(settings=SimpleNamespace(page_max_limit=PAGE_MAX_LIMIT))
    install_problem_handlers(app)

    @app.get("/query_filters")
    async def by_filters(filters: Annotated[StayFilters, Depends(stay_filters)]) -> None:
        return None

    @app.get("/list_query")
    async def by_list(query: Annotated[ListQuery[StayFilters], Depends(stay_query)]) -> None:
        return None

    return app


@pytest.mark.parametrize("reader", ["query_filters", "list_query"])
async def test_a_from_later_than_its_to_is_a_422_naming_both(reader: str) -> None:
    """``due_from`` later than ``due_to`` answered 200 and an empty list: a range given
    backwards is the client's mistake (swapped parameters), not a query for nothing. Every
    ``<x>_from``/``<x>_to`` pair of every plugin's filters is checked, by both readers."""
    app = _stays_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as stays_client:
        for fine in (
            {"stay_from": "2026-05-01", "stay_until": "2026-05-01"},  # one day: a range
            {"stay_from": "2026-05-02"},
            {"seen_from": "2026-05-01T10:00:00+02:00", "seen_to": "2026-05-01T09:00:00"},
        ):
            ok = await stays_client.get(f"/{reader}", params=fine)
            assert ok.status_code == 200, (fine, ok.text)
        for backwards, named in (
            ({"stay_from": "2026-05-02", "stay_until": "2026-05-01"}, ("stay_from", "stay_until")),
            ({"seen_from": "2026-05-01T10:00:00Z", "seen_to": "2026-05-01T09:00:00"},
             ("seen_from", "seen_to")),
        ):  # fmt: skip
            answer = await stays_client.get(f"/{reader}", params=backwards)
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            detail = answer.json()["detail"]
            assert all(name in detail for name in named) and "later than" in detail, detail
            assert answer.json()["errors"][0]["loc"] == ["query", named[0]]


@dataclass(frozen=True)
class BoundFilters:
    end_after: IsoDate | None = None
    end_before: IsoDate | None = None
    size_min: int | None = None
    size_max: Annotated[int | None, Filter(name="size_at_most")] = None  # its pair, renamed
    price_min: Annotated[str | None, Filter(pattern=r"^[0-9]{1,15}(\.[0-9]{1,6})?$")] = None
    price_max: Annotated[str | None, Filter(pattern=r"^[0-9]{1,15}(\.[0-9]{1,6})?$")] = None


bound_filters = query_filters(BoundFilters)
bound_query = list_query(BoundFilters)


@pytest.mark.parametrize("reader", ["query_filters", "list_query"])
async def test_an_after_later_than_its_before_and_a_min_over_its_max_are_422s_naming_both(
    reader: str,
) -> None:
    """Only ``<x>_from``/``<x>_to`` pairs were checked: deals' policies list answered
    ``end_after`` later than ``end_before``, and its deals list ``value_min`` over
    ``value_max``, with 200 and an empty list. Every ``<x>_after``/``<x>_before`` and
    ``<x>_min``/``<x>_max`` pair is a range too; decimal strings compare as numbers."""
    app = FastAPI()
    app.state.context = SimpleNamespace(settings=SimpleNamespace(page_max_limit=PAGE_MAX_LIMIT))
    install_problem_handlers(app)

    @app.get("/query_filters")
    async def by_filters(filters: Annotated[BoundFilters, Depends(bound_filters)]) -> None:
        return None

    @app.get("/list_query")
    async def by_list(query: Annotated[ListQuery[BoundFilters], Depends(bound_query)]) -> None:
        return None

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as bounds_client:
        for fine in (
            {"end_after": "2026-05-01", "end_before": "2026-05-01"},  # one day: a range
            {"end_after": "2026-05-02"},
            {"size_min": "3", "size_at_most": "3"},
            {"price_min": "9", "price_max": "10"},  # "9" > "10" as text, not as a number
            {"price_min": "10.5", "price_max": "10.50"},
        ):
            ok = await bounds_client.get(f"/{reader}", params=fine)
            assert ok.status_code == 200, (fine, ok.text)
        for backwards, named, past in (
            ({"end_after": "2026-05-02", "end_before": "2026-05-01"},
             ("end_after", "end_before"), "later than"),
            ({"size_min": "4", "size_at_most": "3"}, ("size_min", "size_at_most"), "more than"),
            ({"price_min": "10", "price_max": "9.99"}, ("price_min", "price_max"), "more than"),
        ):  # fmt: skip
            answer = await bounds_client.get(f"/{reader}", params=backwards)
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            detail = answer.json()["detail"]
            assert all(name in detail for name in named) and past in detail, detail
            assert answer.json()["errors"][0]["loc"] == ["query", named[0]]
