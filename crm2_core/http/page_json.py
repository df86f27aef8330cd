"""A list page of plain rows, validated into dicts and written by orjson.

``page_response`` validates a page's rows (dicts of a response model's fields) and
writes them as JSON. Through pydantic that means a model instance per row and its
serialiser walking each one: two thirds of the page's time in ``page_response`` on a
deals page. For a response model whose JSON is plain (strings, integers, booleans,
UUIDs, dates and datetimes, lists and literals of those, and plain serialisers that
return one of them, such as ``Amount``'s), the same validators check the rows into
dicts and orjson writes them, with the same bytes: the model's own core schema, its
fields as a typed dict; each plain serialiser applied once the field is valid.

Anything else in the model (a nested model, a float, a field serialiser that needs the
instance, an alias, a computed field, model validators) makes it ``None``: such a page
keeps pydantic's path. So does a page these validators refuse (pydantic's then raises
its error, or takes a row given as a model instance) or orjson cannot write (an
integer beyond 64 bits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic_core import SchemaValidator, ValidationError, core_schema

# Core schema types whose validated values orjson writes as pydantic does.
_PLAIN = frozenset({"str", "int", "bool", "uuid", "datetime", "date"})
# Wrappers whose value is their inner schema's (validators that run around it).
_AROUND = frozenset({"nullable", "default", "function-before", "function-after"})
_PLAIN_RESULTS = frozenset({"str", "int", "bool"})
_SERIALISED_WHEN = frozenset({"always", "json", "unless-none", "json-unless-none"})
# Pydantic writes a UTC datetime with "Z"; orjson does so with this option.
_ORJSON_OPTIONS = orjson.OPT_UTC_Z


@dataclass(frozen=True)
class PlainPage:
    """Validators of ``{"items": [...], "next_cursor": ...}`` returning plain dicts."""

    native: SchemaValidator  # UUIDs kept as objects (orjson writes ``uuid.UUID`` itself)
    uuids_as_text: SchemaValidator  # UUIDs made text (a driver's ``UUID`` subclass)

    def json(
        self, items: Sequence[Any], next_cursor: str | None, driver_uuids: bool
    ) -> bytes | None:
        """The page's JSON; ``None`` when these validators refuse the rows or orjson
        cannot write them: pydantic's path decides then (and raises what it refuses)."""
        validator = self.uuids_as_text if driver_uuids else self.native
        try:
            page = validator.validate_python({"items": items, "next_cursor": next_cursor})
            return orjson.dumps(page, option=_ORJSON_OPTIONS)
        except (ValidationError, orjson.JSONEncodeError):
            return None


@cache
def plain_page(model: type[BaseModel]) -> PlainPage | None:
    """``model``'s page validators when its JSON is plain (see the module), else ``None``."""
    native = _page_schema(model, uuids_as_text=False)
    if native is None:
        return None
    text = _page_schema(model, uuids_as_text=True)
    assert text is not None  # the same walk of the same schema
    return PlainPage(SchemaValidator(native), SchemaValidator(text))


def _page_schema(model: type[BaseModel], *, uuids_as_text: bool) -> Any | None:
    schema = model.__pydantic_core_schema__
    if schema.get("type") != "model" or _has_any(schema, "post_init", "root_model", "custom_init"):
        return None  # e.g. "definitions" (a recursive or shared model), model validators
    if "serialization" in schema:  # a model serialiser
        return None
    config = dict(schema.get("config") or {})
    if config.get("extra_fields_behavior") == "allow":
        return None
    if config.get("ser_json_temporal", "iso8601") != "iso8601":
        return None
    fields = schema["schema"]
    if fields.get("type") != "model-fields" or _has_any(fields, "computed_fields", "extras_schema"):
        return None
    row_fields: dict[str, Any] = {}
    for name, field in fields["fields"].items():
        if any(key.startswith("serialization_exclude") for key in field):
            return None
        if field.get("serialization_alias", name) != name or _has_any(field, "validation_alias"):
            return None
        value = _plain(field["schema"], uuids_as_text)
        if value is None:
            return None
        required = field["schema"].get("type") != "default"
        row_fields[name] = core_schema.typed_dict_field(value, required=required)
    extra = config.get("extra_fields_behavior", "ignore")
    row = core_schema.typed_dict_schema(row_fields, extra_behavior=extra, config=config)  # type: ignore[arg-type]
    cursor = core_schema.with_default_schema(
        core_schema.nullable_schema(core_schema.str_schema()), default=None
    )
    return core_schema.typed_dict_schema(
        {
            "items": core_schema.typed_dict_field(core_schema.list_schema(row)),
            "next_cursor": core_schema.typed_dict_field(cursor, required=False),
        }
    )


def _has_any(schema: Any, *keys: str) -> bool:
    return any(schema.get(key) for key in keys)


def _plain(schema: Any, uuids_as_text: bool) -> Any | None:
    """``schema`` made to validate into what orjson writes as pydantic would write it,
    or ``None``."""
    kind = schema.get("type")
    serialization = schema.get("serialization")
    if serialization is not None:
        applied = _serialiser(serialization)
        if applied is None:
            return None
        unserialised = {key: value for key, value in schema.items() if key != "serialization"}
        return core_schema.no_info_after_validator_function(applied, unserialised)
    if kind in _PLAIN:
        if kind == "uuid" and uuids_as_text:
            return core_schema.no_info_after_validator_function(str, schema)
        return schema
    if kind in _AROUND:
        inner = _plain(schema["schema"], uuids_as_text)
        return None if inner is None else {**schema, "schema": inner}
    if kind == "list" and "items_schema" in schema:
        items = _plain(schema["items_schema"], uuids_as_text)
        return None if items is None else {**schema, "items_schema": items}
    if kind == "literal" and all(
        value is None or type(value) in (str, int, bool) for value in schema["expected"]
    ):
        return schema
    return None


def _serialiser(serialization: Any) -> Callable[[Any], Any] | None:
    """A plain serialiser returning a string, integer or boolean, as a function of the
    valid value (``Amount``'s decimal → ``"12.50"``); ``None`` for any other."""
    if serialization.get("type") != "function-plain":
        return None
    if serialization.get("info_arg") or serialization.get("is_field_serializer"):
        return None
    when = serialization.get("when_used", "always")
    returns = serialization.get("return_schema") or {}
    if when not in _SERIALISED_WHEN or returns.get("type") not in _PLAIN_RESULTS:
        return None
    function: Callable[[Any], Any] = serialization["function"]
    if when.endswith("unless-none"):
        return lambda value: None if value is None else function(value)
    return function
