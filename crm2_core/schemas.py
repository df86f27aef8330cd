"""Base classes for request and response bodies shared by every plugin.

What every request body inherits, so no plugin has to remember it:

- unknown fields are an error (``extra="forbid"``);
- no string anywhere in it (nested lists and objects included) holds a character
  PostgreSQL cannot store — NUL, or half of a UTF-16 surrogate pair — so it is a
  422 naming the field, not a 500 from the driver (SQLite would keep it, and one
  stored NUL would then break the same query on the other database);
- no integer lies outside the 64-bit range of the widest column (``Int32`` for
  an ``INTEGER`` column narrows it), and the OpenAPI document says so, so
  generated clients and fuzzers send what the server takes;
- no aware date-time lies before the first instant a ``UtcDateTime`` column stores
  (a 422 naming the field), and one past the last is that last instant, so a
  response echoes what was stored;
- in an ``UpdateModel`` (a PATCH body) an explicit ``null`` is refused unless the
  field is ``Clearable``: leaving a field out keeps it, ``null`` never silently
  means "keep" nor clears a required column.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import types
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FutureDate,
    NaiveDatetime,
    PastDate,
    ValidationInfo,
    field_validator,
)

# The first and last instants a ``UtcDateTime`` column stores: one microsecond inside
# what Python can hold (asyncpg binds datetime.min/max as -/+infinity).
FIRST_INSTANT = (datetime.min + timedelta(microseconds=1)).replace(tzinfo=UTC)
LAST_INSTANT = (datetime.max - timedelta(microseconds=1)).replace(tzinfo=UTC)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
"""An integer stored in an ``INTEGER`` column (PostgreSQL's is 32-bit)."""
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""An integer stored in a ``BIGINT`` column; every request integer is at most this."""

_ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    """Pydantic reads ``0.5`` or ``"1700000000"`` as a Unix time; the document says ISO 8601."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date or date-time such as 2026-12-03T10:00:00Z")
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an ISO 8601 string, not a number")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A date-time given as ISO 8601 (a query parameter, say), never a number."""
AwareIsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
"""The same, with its timezone required."""
IsoDate = Annotated[date, BeforeValidator(_iso_only)]
"""A date given as ISO 8601 (``2026-12-03``), never a number."""


def storable_instant(value: Any) -> Any:
    """``value``, unless it is an aware date-time a ``UtcDateTime`` column cannot keep as
    given: one before ``FIRST_INSTANT`` in UTC (``0001-01-01T00:00:00+01:00``) is a
    ``ValueError``; one past ``LAST_INSTANT`` is ``LAST_INSTANT``, the column's own
    "never" (an expiry at the end of time)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return value
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999 in another zone
        if value.year > 1:
            return LAST_INSTANT
        utc = None
    if utc is None or utc < FIRST_INSTANT:
        raise ValueError(
            f"must be at or after {FIRST_INSTANT.isoformat()}, the first instant stored "
            "(times are kept in UTC)"
        )
    return LAST_INSTANT if utc > LAST_INSTANT else value


def _at(place: Place, why: object) -> ValueError:
    path = _spelled(place)
    return ValueError((f"{path}: " if path else "") + str(why))


def _walked(value: Any) -> bool:
    """Whether ``storable_instants`` looks inside: a list of strings (tags, e-mails) is the
    common case, with nothing in it to look at."""
    if isinstance(value, list | tuple):
        return bool(value) and not isinstance(value[0], str)
    return isinstance(value, dict) and bool(value)


def _entries(value: Any) -> Iterator[tuple[Any, Any]]:
    return iter(value.items()) if isinstance(value, dict) else enumerate(value)


# Where a nested value is: the root's path, or ``(parent's place, key, in a dict)``.
# Spelled out only for an error: building each path as a string cost the square of
# the depth (a 100,000-deep value took most of a minute).
Place = str | tuple[Any, Any, bool]


def _inner(place: Place, container: Any, key: Any) -> Place:
    return (place, key, isinstance(container, dict))


def _spelled(place: Place) -> str:
    parts: list[tuple[Any, bool]] = []
    while isinstance(place, tuple):
        place, key, in_dict = place
        parts.append((key, in_dict))
    spelled = [place]
    for key, in_dict in reversed(parts):
        if not in_dict:
            spelled.append(f"[{key}]")
        elif spelled != [""]:
            spelled.append(f".{key}")
        else:
            spelled = [str(key)]
    return "".join(spelled)


def _rebuilt(container: Any, changed: dict[Any, Any]) -> Any:
    if not changed:
        return container
    if isinstance(container, dict):
        kept = dict(container)
        kept.update(changed)
        return kept
    items = list(container)
    for index, item in changed.items():
        items[index] = item
    return items if isinstance(container, list) else tuple(items)


def storable_instants(value: Any, path: str = "") -> Any:
    """``storable_instant`` for ``value`` and every date-time in its lists, tuples and
    dicts (a nested model checks its own fields); the ``ValueError`` names the path.

    An explicit stack, not recursion: a client's JSON (an ``Any`` field) may nest
    hundreds of levels, which recursion here turned into a ``RecursionError`` (a 500).
    """
    if not _walked(value):
        try:
            return storable_instant(value)
        except ValueError as exc:
            raise _at(path, exc) from None
    # a frame: [container, its place, its entries left, its changed items, its key in its parent]
    stack: list[list[Any]] = [[value, path, _entries(value), {}, None]]
    while True:
        container, where, entries, changed, key_in_parent = stack[-1]
        for key, item in entries:
            inner = _inner(where, container, key)
            if _walked(item):
                stack.append([item, inner, _entries(item), {}, key])
                break
            try:
                fresh = storable_instant(item)
            except ValueError as exc:
                raise _at(inner, exc) from None
            if fresh is not item:
                changed[key] = fresh
        else:
            stack.pop()
            done = _rebuilt(container, changed)
            if not stack:
                return done
            if done is not container:
                stack[-1][3][key_in_parent] = done


# NUL (PostgreSQL text cannot hold it) and lone surrogates (not encodable as UTF-8;
# JSON's "\ud800" escape produces one).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (``None`` when it can)."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain the NUL character (\\u0000)"
    return "must not contain an unpaired UTF-16 surrogate"


def unstorable_cell(cells: Mapping[str, str]) -> tuple[str, str] | None:
    """The first ``(name, why)`` of ``cells`` that cannot be stored as text, else ``None``.

    One search of the joined text for the common clean row (one character class, so a
    clean join means clean cells; Python never pairs two lone surrogates when joining).
    """
    if _UNSTORABLE.search("".join(cells.values())) is None:
        return None
    for name, value in cells.items():
        reason = unstorable_text(value)
        if reason:
            return name, reason
    return None


def check_storable(value: Any, path: str = "") -> None:
    """Raise ``ValueError`` for a string (or int) inside ``value`` no column can store."""
    # Runs for every field of every request body and CSV import row: the common cases
    # (a clean string, a list of clean strings) cost one regex search and build no path.
    # An explicit stack, not recursion: a client's JSON may nest hundreds of levels.
    stack: list[tuple[Any, Place]] = [(value, path)]
    while stack:
        value, place = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value) is None:
                continue
            raise _at(place, unstorable_text(value))
        if isinstance(value, int) and not isinstance(value, bool):
            if not INT64_MIN <= value <= INT64_MAX:
                raise _at(place, "is outside the 64-bit integer range")
        elif isinstance(value, list | tuple):
            # one character class, so a clean join means clean items (Python never pairs
            # two lone surrogates into one character when joining)
            try:
                if _UNSTORABLE.search("".join(value)) is None:
                    continue
            except TypeError:  # not all strings: item by item
                pass
            # reversed: the first item is checked first, as it was named first
            stack.extend((value[i], (place, i, False)) for i in reversed(range(len(value))))
        elif isinstance(value, dict):
            inner: list[tuple[Any, Place]] = []
            for key, item in value.items():
                inner.append((key, place))
                inner.append((item, (place, key, True)))
            stack.extend(reversed(inner))


class _ClearableMarker:
    def __repr__(self) -> str:
        return "Clearable"


Clearable = _ClearableMarker()
"""Marks an ``UpdateModel`` field that ``null`` clears: ``Annotated[date | None, Clearable]``."""


def _is_clearable(model: type[BaseModel], name: str | None) -> bool:
    field = model.__pydantic_fields__.get(name or "")
    return field is not None and any(m is Clearable for m in field.metadata)


# One character that pydantic's ``str_strip_whitespace`` keeps (Unicode White_Space, which is
# neither ECMA-262's ``\s``, the document's regex dialect, nor Python's ``str.isspace``).
NOT_BLANK = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def _no_blank_strings(schema: Any) -> None:
    """A request string with a minimum length says it needs a non-blank character: the server
    strips whitespace first (``str_strip_whitespace``), so ``" "`` is refused as too short."""
    if isinstance(schema, dict):
        if (
            schema.get("type") == "string"
            and schema.get("minLength", 0) >= 1
            and not {"pattern", "format", "enum", "const"} & schema.keys()
        ):
            schema["pattern"] = NOT_BLANK
        for item in schema.values():
            _no_blank_strings(item)
    elif isinstance(schema, list):
        for item in schema:
            _no_blank_strings(item)


def _bound_integers(schema: Any) -> None:
    """Every integer in the document carries the bounds the server checks."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            if "minimum" not in schema and "exclusiveMinimum" not in schema:
                schema["minimum"] = INT64_MIN
            if "maximum" not in schema and "exclusiveMaximum" not in schema:
                schema["maximum"] = INT64_MAX
        for item in schema.values():
            _bound_integers(item)
    elif isinstance(schema, list):
        for item in schema:
            _bound_integers(item)


def _request_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    _bound_integers(schema.get("properties", {}))
    _no_blank_strings(schema.get("properties", {}))


def _update_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """``null`` appears in the document only where the server takes it."""
    _request_schema(schema, model)
    for name, prop in schema.get("properties", {}).items():
        if _is_clearable(model, name):
            continue
        branches = prop.get("anyOf")
        if isinstance(branches, list) and {"type": "null"} in branches:
            kept = [b for b in branches if b != {"type": "null"}]
            del prop["anyOf"]
            if len(kept) == 1:
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
        if "default" in prop and prop["default"] is None:
            del prop["default"]


_TEMPORAL = (datetime, date, AwareDatetime, NaiveDatetime, PastDate, FutureDate)


def _is_temporal(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, _TEMPORAL):
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_temporal(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_is_temporal(a) for a in get_args(annotation))
    return False


@functools.cache
def _temporal_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` holding a date or time (read once per class: this runs per field
    of every request body, and of every row of a CSV import)."""
    return frozenset(n for n, f in model.__pydantic_fields__.items() if _is_temporal(f.annotation))


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_request_schema
    )

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        check_storable(value)
        if value is not None and info.field_name in _temporal_fields(cls):
            _iso_only(value)  # the document says an ISO 8601 string
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _storable_instant(cls, value: Any) -> Any:
        return storable_instants(value)


class UpdateModel(RequestModel):
    """A PATCH body: only the fields sent change; ``null`` only where a field is ``Clearable``.

    ``class ClientUpdate(UpdateModel, partial_of=ClientCreate, clearable=("tax_id",))``
    takes every field of ``ClientCreate`` with its limits, each optional; fields
    declared in the class body (or named in ``exclude``) replace or drop them.
    """

    model_config = ConfigDict(json_schema_extra=_update_schema)

    def __init_subclass__(
        cls,
        partial_of: type[BaseModel] | None = None,
        clearable: Iterable[str] = (),
        exclude: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        if partial_of is not None:
            _copy_fields(cls, partial_of, exclude, partial=True, clearable=set(clearable))
        super().__init_subclass__(**kwargs)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and not _is_clearable(cls, info.field_name):
            raise ValueError("must not be null; leave the field out to keep its value")
        return value


def _copy_fields(
    cls: type[BaseModel],
    source: type[BaseModel],
    exclude: Iterable[str],
    *,
    partial: bool,
    clearable: set[str] | None = None,
    include: Iterable[str] | None = None,
) -> None:
    """Put ``source``'s fields in front of ``cls``'s own, before pydantic collects them.

    ``partial``: each optional (default ``None``) with its limits kept; otherwise the
    bare types, required (a response: the record always has them).
    """
    own = dict(inspect.get_annotations(cls))
    skip = set(exclude) | set(own)
    wanted = None if include is None else set(include)
    copied: dict[str, Any] = {}
    for name, field in source.__pydantic_fields__.items():
        if name in skip or (wanted is not None and name not in wanted):
            continue
        if partial:
            info = copy.copy(field)
            info.default, info.default_factory = None, None
            annotation: Any = field.annotation | None  # type: ignore[operator]
            if clearable and name in clearable:
                annotation = Annotated[annotation, Clearable]
            copied[name] = annotation
            setattr(cls, name, info)
        else:
            copied[name] = field.annotation
            if name in cls.__dict__:
                delattr(cls, name)
    cls.__annotations__ = {**copied, **own}


class ResponseModel(BaseModel):
    """A response body, read from a row's attributes.

    ``class ClientPublic(ResponseModel, fields_of=Client, exclude=("search_text",))``
    takes the table's columns as its fields (``include=`` to name them instead);
    fields declared in the class body replace them.
    """

    model_config = ConfigDict(from_attributes=True)

    def __init_subclass__(
        cls,
        fields_of: type[BaseModel] | None = None,
        exclude: Iterable[str] = (),
        include: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if fields_of is not None:
            _copy_fields(cls, fields_of, exclude, partial=False, include=include)
        super().__init_subclass__(**kwargs)
