"""A list's query parameters declared once, on the filter object the repository reads.

A plugin's filter dataclass is the declaration; ``query_filters`` derives the
FastAPI dependency that reads the query string into it, with the OpenAPI
(types, enums, limits, descriptions) taken from the fields::

    @dataclass(frozen=True)
    class TaskFilters:
        assignee: Annotated[uuid.UUID | None, Filter("assignee's user id")] = None
        statuses: Annotated[tuple[Status, ...], Filter("repeat for several", name="status")] = ()
        due_from: IsoDateTime | None = None                 # naive times are read as UTC
        q: Annotated[str | None, Filter("in the title", max_length=200)] = None
        overdue_at: Annotated[datetime | None, Derived] = None    # set by ``finish``

    task_filters = query_filters(TaskFilters, params={"context": ContextDep},
                                 finish=lambda f, context: replace(f, overdue_at=...))

- every field is a query parameter named after it (``Filter(name=…)`` renames it),
  except those marked ``Derived``, which ``finish`` fills in;
- a ``tuple[X, ...]`` field is a repeatable parameter (``?status=a&status=b``);
- a ``datetime`` field given without a zone is read as UTC;
- a ``<x>_from`` field given later than its ``<x>_to`` field is a 422 naming both, as
  are an ``<x>_after`` later than its ``<x>_before`` and an ``<x>_min`` more than its
  ``<x>_max`` (decimal strings compare as numbers);
- a ``Depends(…)`` in a field's ``Annotated`` makes it a dependency instead;
- ``params`` are more inputs for ``finish`` (dependencies such as the context, or
  query parameters that are not fields), ``finish(filters, **params)`` returns the
  final object (it may be async and may raise a ``Crm2Error``).

Bad input is FastAPI's 422, which the core answers as ``application/problem+json``.

A list endpoint reads its whole query string at once with ``list_query``: the
pagination (``limit``, ``cursor``), the filter fields and ``sort`` are the fields of
one pydantic model, validated in one call (one FastAPI dependency instead of one per
parameter group)::

    task_query = list_query(TaskFilters, TASK_SORTS, params={"context": ContextDep},
                            finish=_overdue_at)
    TaskListQuery = Annotated[ListQuery[TaskFilters], Depends(task_query)]

    async def list_tasks(..., query: TaskListQuery):   # query.filters, query.sort, query.page

``list_route(query=task_query)`` does the same for a kit route.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar, Union, cast, get_args, get_origin

from fastapi import Query, Request
from fastapi._compat import field_annotation_is_sequence
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from pydantic import BaseModel, ConfigDict, Json, ValidationError, create_model
from starlette.datastructures import QueryParams

from crm2_core.db.pagination import DEFAULT_LIMIT, PageParams
from crm2_core.http.pagination import Cursor, Limit, page_of
from crm2_core.http.routing import OWN_QUERY
from crm2_core.kit.filters import as_utc
from crm2_core.kit.sorting import Sorts

F = TypeVar("F")

__all__ = [
    "Derived",
    "Filter",
    "LinkIdFilter",
    "LinkKindFilter",
    "ListQuery",
    "list_query",
    "query_filters",
]


class Filter:
    """A filter field's query parameter: its description, another name, and limits
    (``max_length``, ``min_length``, ``pattern``, ``ge``, ``le``, … as ``Query`` takes them)."""

    def __init__(self, description: str | None = None, *, name: str | None = None, **limits: Any):
        self.description = description
        self.name = name
        self.limits = limits

    def query(self, alias: str | None) -> Any:
        extra = dict(self.limits)
        if self.description is not None:
            extra["description"] = self.description
        if alias is not None:
            extra["alias"] = alias
        return Query(**extra)


class _Derived:
    """Marks a field that is not read from the query (``finish`` sets it)."""

    def __repr__(self) -> str:
        return "Derived"


Derived = _Derived()

# The two halves of a link to another plugin's record (``?link_kind=deals.deal&link_id=…``).
LinkKindFilter = Annotated[
    str | None, Filter(max_length=64, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
]
LinkIdFilter = Annotated[str | None, Filter(max_length=64)]


def _split(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, a, b]`` → ``(T, (a, b))``; anything else → ``(hint, ())``."""
    if get_origin(hint) is Annotated:
        return hint.__origin__, tuple(hint.__metadata__)
    return hint, ()


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _repeated(annotation: Any) -> Any | None:
    """``X`` of a ``tuple[X, ...]`` (maybe ``| None``), else ``None``."""
    for member in _members(annotation):
        if get_origin(member) is tuple:
            args = get_args(member)
            if len(args) == 2 and args[1] is Ellipsis:
                return args[0]
    return None


def _is_datetime(annotation: Any) -> bool:
    for member in _members(annotation):
        base, _ = _split(member)
        if isinstance(base, type) and issubclass(base, datetime):
            return True
    return False


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    parameter: inspect.Parameter
    repeated: bool
    utc: bool
    alias: str = ""  # the query parameter's name (the field's, unless ``Filter(name=…)``)


def _field(field: dataclasses.Field[Any], hint: Any) -> _Field | None:
    annotation, metadata = _split(hint)
    if any(isinstance(m, _Derived) for m in metadata):
        return None
    no_default = field.default is dataclasses.MISSING
    no_default = no_default and field.default_factory is dataclasses.MISSING
    if no_default and not any(isinstance(m, DependsParam) for m in metadata):
        raise TypeError(f"filter field {field.name!r} needs a default (it may be left out)")
    marker = next((m for m in metadata if isinstance(m, Filter)), Filter())
    others = tuple(m for m in metadata if not isinstance(m, Filter))
    depends = next((m for m in others if isinstance(m, DependsParam)), None)
    if depends is not None:
        parameter = inspect.Parameter(
            field.name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[annotation, depends]
        )
        return _Field(field.name, parameter, repeated=False, utc=False, alias=field.name)
    item = _repeated(annotation)
    if item is not None:
        annotation, default = list[item] | None, None  # type: ignore[valid-type]
    elif field.default is not dataclasses.MISSING:
        default = field.default
    else:
        factory: Any = field.default_factory
        default = factory()
    query = marker.query(marker.name if marker.name not in (None, field.name) else None)
    parameter = inspect.Parameter(
        field.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[(annotation, *others, query)],
        default=default,
    )
    return _Field(
        field.name,
        parameter,
        repeated=item is not None,
        utc=_is_datetime(annotation),
        alias=marker.name or field.name,
    )


def _extra(params: Mapping[str, Any] | None) -> list[inspect.Parameter]:
    out = []
    for name, spec in (params or {}).items():
        annotation, default = spec if isinstance(spec, tuple) else (spec, inspect.Parameter.empty)
        out.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
            )
        )
    return out


def query_filters(
    cls: type[F],
    *,
    params: Mapping[str, Any] | None = None,
    finish: Callable[..., F | Awaitable[F]] | None = None,
) -> Callable[..., Awaitable[F]]:
    """The FastAPI dependency reading ``cls`` (a dataclass) from the query string.

    ``params`` maps a name to an annotation, or to ``(annotation, default)``; those
    values go to ``finish`` only. Use the result as ``Depends(…)`` or as
    ``list_route(filters=…)``.
    """
    declared = _declared(cls)
    extras = _extras_for(cls, declared, params, finish)
    extra_names = [p.name for p in extras]

    async def read(**kwargs: Any) -> F:
        rest = {name: kwargs[name] for name in extra_names}
        return await _finished(_build(cls, declared, kwargs), finish, rest)

    # Dependencies (no default) first, then the fields in order, then the other params.
    empty = inspect.Parameter.empty
    parameters = [p for p in extras if p.default is empty]
    parameters += [f.parameter for f in declared]
    parameters += [p for p in extras if p.default is not empty]
    read.__signature__ = inspect.Signature(parameters, return_annotation=cls)  # type: ignore[attr-defined]
    read.__name__ = read.__qualname__ = f"{_snake(cls.__name__)}_query"
    read.__doc__ = f"Read {cls.__name__} from the query string."
    return read


def _declared(cls: type[Any]) -> list[_Field]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    hints = typing.get_type_hints(cls, include_extras=True)
    return [
        f
        for field in dataclasses.fields(cls)
        if field.init and (f := _field(field, hints[field.name])) is not None
    ]


def _extras_for(
    cls: type[Any], declared: list[_Field], params: Mapping[str, Any] | None, finish: Any
) -> list[inspect.Parameter]:
    extras = _extra(params)
    clash = {p.name for p in extras} & {f.name for f in declared}
    if clash:
        raise TypeError(f"params {sorted(clash)} are also fields of {cls.__name__}")
    if extras and finish is None:
        raise TypeError("params are for finish: give finish too")
    return extras


def _build(cls: type[F], declared: list[_Field], values: Mapping[str, Any]) -> F:
    """The filter object from the validated values (repeated ones as tuples, times in UTC)."""
    built = {}
    for f in declared:
        value = values[f.name]
        if f.repeated:
            value = tuple(value or ())
        elif f.utc:
            value = as_utc(value)
        built[f.name] = value
    _check_ranges(declared, built)
    return cls(**built)


# a range's two ends by the suffixes of their names (low, high), and what its low end
# given past its high end is called
_RANGES = (
    ("_from", "_to", "later than"),
    ("_after", "_before", "later than"),
    ("_min", "_max", "more than"),
)


def _comparable(value: Any) -> Any:
    """``value`` as its range compares it: a string as the decimal number it spells
    (deals' ``value_min`` is one: ``"9" > "10"`` as text), ``None`` for other text."""
    if not isinstance(value, str):
        return value
    try:
        number = Decimal(value)
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def _check_ranges(declared: list[_Field], values: Mapping[str, Any]) -> None:
    """A ``<x>_from`` later than its ``<x>_to`` (an ``<x>_after`` later than its
    ``<x>_before``, an ``<x>_min`` more than its ``<x>_max``) is a 422 naming both: the
    range is given backwards, which is a client's mistake, not a query for nothing."""
    aliases = {f.name: f.alias for f in declared}
    errors: list[dict[str, Any]] = []
    for name, alias in aliases.items():
        for low_suffix, high_suffix, past in _RANGES:
            if not name.endswith(low_suffix):
                continue
            end = name.removesuffix(low_suffix) + high_suffix
            if end not in aliases:
                continue
            low, high = _comparable(values[name]), _comparable(values[end])
            if low is None or high is None:
                continue
            try:
                backwards = low > high
            except TypeError:  # values that do not compare: no range to check
                continue
            if backwards:
                to = aliases[end]
                msg = (
                    f"{alias} ({values[name]}) is {past} {to} ({values[end]}): give {alias} <= {to}"
                )
                errors.append({"type": "value_error", "loc": ("query", alias), "msg": msg})
    if errors:
        raise RequestValidationError(errors)


async def _finished(
    filters: F, finish: Callable[..., F | Awaitable[F]] | None, params: Mapping[str, Any]
) -> F:
    if finish is None:
        return filters
    result = finish(filters, **params)
    if inspect.isawaitable(result):
        return await result
    return result


# -- one model for a list's whole query string ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class ListQuery(typing.Generic[F]):
    """A list request's query, read and checked at once (``list_query``): the filter
    object (``None`` for a list without filters), the sort (``""`` for a list without
    ``Sorts``) and the page (``limit`` already capped by ``CRM2_PAGE_MAX_LIMIT``)."""

    filters: F
    sort: str
    page: PageParams


class _QueryModel(BaseModel):
    # Unknown names never reach the model: the request guard answers them with a 400.
    model_config = ConfigDict(extra="ignore")


_PAGE_FIELDS = ("limit", "cursor")


class _QueryReader:
    """Reads a query model from the query string as FastAPI does for ``Annotated[model,
    Query()]`` (a repeatable field from every occurrence, an absent one left to its
    default, errors located under ``query``), with each field's facts worked out once
    instead of on every request."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.fields = [
            (
                info.alias or name,
                not any(type(m) is Json for m in info.metadata)
                and field_annotation_is_sequence(info.annotation),
            )
            for name, info in model.model_fields.items()
        ]
        # A field read under another name than its alias takes FastAPI's own path.
        self.simple = all(
            info.validation_alias in (None, info.alias) for info in model.model_fields.values()
        )

    def read(self, params: QueryParams) -> BaseModel:
        values: dict[str, Any] = {}
        for alias, repeated in self.fields:
            if repeated:
                many = params.getlist(alias)
                if many:
                    values[alias] = many
            else:
                one = params.get(alias)
                if one is not None:
                    values[alias] = one
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in errors]
            ) from None


def list_query(
    filters: type[F] | None,
    sorts: Sorts | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    finish: Callable[..., F | Awaitable[F]] | None = None,
    page_last: bool = False,
) -> Callable[..., Awaitable[ListQuery[F]]]:
    """The FastAPI dependency reading a list's query string into a ``ListQuery``.

    One pydantic query model holds ``limit`` and ``cursor``, the fields of ``filters``
    (a dataclass declared as for ``query_filters``) and ``sort`` (the ``Sorts``' names),
    in that order (``page_last``: the filters before ``limit`` and ``cursor``), so the
    OpenAPI parameters are those of the separate dependencies it replaces. ``params``
    and ``finish`` work as in ``query_filters``; ``finish`` runs once every parameter
    is valid. The dependency keeps the model, the filter type and the sorts as its
    ``model``, ``filters_type`` and ``sorts`` attributes (``list_route`` reads them).
    """
    declared = _declared(filters) if filters is not None else []
    if filters is None and (params or finish is not None):
        raise TypeError("params and finish are for filters: give the filter dataclass")
    extras = _extras_for(filters, declared, params, finish) if filters is not None else []
    page_fields: dict[str, Any] = {"limit": (Limit, DEFAULT_LIMIT), "cursor": (Cursor, None)}
    fields: dict[str, Any] = {} if page_last else dict(page_fields)
    for f in declared:
        if f.parameter.default is inspect.Parameter.empty:
            raise TypeError(f"filter field {f.name!r} is a dependency: use query_filters")
        if f.name in (*_PAGE_FIELDS, "sort"):
            raise TypeError(f"filter field {f.name!r} is a pagination or sort parameter")
        fields[f.name] = (f.parameter.annotation, f.parameter.default)
    if page_last:
        fields.update(page_fields)
    if sorts is not None:
        fields["sort"] = (sorts.annotation, sorts.default)
    title = filters.__name__.removesuffix("Filters") if filters is not None else "Page"
    model: type[BaseModel] = create_model(f"{title}ListQuery", __base__=_QueryModel, **fields)

    reader = _QueryReader(model)

    async def read(request: Request, query: BaseModel | None = None, **kwargs: Any) -> ListQuery[F]:
        if query is None:  # solved by crm2's route (``OWN_QUERY``), not by FastAPI
            query = reader.read(request.query_params)
        values = query.__dict__
        page = page_of(request, values["limit"], values["cursor"])
        sort = values["sort"] if sorts is not None else ""
        if filters is None:
            return ListQuery(cast(F, None), sort, page)
        built = await _finished(_build(filters, declared, values), finish, kwargs)
        return ListQuery(built, sort, page)

    empty = inspect.Parameter.empty
    parameters = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        *(p for p in extras if p.default is empty),
        inspect.Parameter(
            "query", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[model, Query()]
        ),
        *(p for p in extras if p.default is not empty),
    ]
    read.__signature__ = inspect.Signature(parameters, return_annotation=ListQuery)  # type: ignore[attr-defined]
    read.__name__ = read.__qualname__ = f"{_snake(title)}_list_query"
    read.__doc__ = f"Read {model.__name__} (page, filters, sort) from the query string."
    read.model = model  # type: ignore[attr-defined]
    if reader.simple:
        setattr(read, OWN_QUERY, "query")
    read.filters_type = filters  # type: ignore[attr-defined]
    read.sorts = sorts  # type: ignore[attr-defined]
    return read


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
