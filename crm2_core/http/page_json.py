"""A list page of plain rows, validated into dicts and written by orjson.

``page_response`` validates a page's rows (a response model's fields as dicts, rows
read by attribute, or the model's instances) and writes them as JSON. Through pydantic
that means a model instance per row and its serialiser walking each one: two thirds of
the page's time in ``page_response`` on a deals page. For a response model whose JSON
is plain (strings, integers, booleans, UUIDs, dates and datetimes, literals, lists and
nested models of those, and plain serialisers that return a string, integer or boolean,
such as ``Amount``'s), the model's own field schemas validate the rows into dicts (each
plain serialiser applied once the field is valid) and orjson writes them: the same
bytes, without a model instance per row.

Anything else in the model (a float, a dict, a field serialiser that needs the
instance, an alias, a computed field, model validators, config that changes how
fields validate, a recursive model) makes ``plain_page`` ``None``: such a page keeps
pydantic's path. So does a page these validators refuse (pydantic then raises its
error) or orjson cannot write (an integer beyond 64 bits).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
# Config that changes nothing in how a model's fields are validated or written.
_NEUTRAL_CONFIG = frozenset({"title", "from_attributes", "extra_fields_behavior"})
# A model's fields validate into ``(fields, extra, fields set)``.
_FIELDS_DICT = operator.itemgetter(0)
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
    row = _Walk.of(model.__pydantic_core_schema__, uuids_as_text)
    if row is None:
        return None
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


@dataclass
class _Walk:
    """One walk of a model's core schema, making each part validate into what orjson
    writes as pydantic would write it; ``None`` where a part cannot."""

    uuids_as_text: bool
    definitions: dict[str, Any]  # a shared model's schema by its ref, inlined where used
    resolving: set[str] = field(default_factory=set)  # refs being inlined: a recursion

    @classmethod
    def of(cls, schema: Any, uuids_as_text: bool) -> Any | None:
        definitions: dict[str, Any] = {}
        if schema.get("type") == "definitions":
            definitions = {item["ref"]: item for item in schema["definitions"]}
            schema = schema["schema"]
        return cls(uuids_as_text, definitions).as_dict(schema)

    def as_dict(self, schema: Any) -> Any | None:
        """A model's schema made to take what the model takes (its fields as a dict, an
        object's attributes where its config reads them, an instance of it) and give
        its fields as a dict."""
        if schema.get("type") != "model" or _has_any(
            schema, "post_init", "root_model", "custom_init", "serialization"
        ):  # model validators or serialisers
            return None
        config = schema.get("config") or {}
        if not set(config) <= _NEUTRAL_CONFIG or config.get("extra_fields_behavior") == "allow":
            return None
        fields = schema["schema"]
        if fields.get("type") != "model-fields" or _has_any(
            fields, "computed_fields", "extras_schema"
        ):
            return None
        plain_fields: dict[str, Any] = {}
        for name, one in fields["fields"].items():
            if any(key.startswith("serialization_exclude") for key in one):
                return None
            if one.get("serialization_alias", name) != name or _has_any(one, "validation_alias"):
                return None
            value = self.plain(one["schema"])
            if value is None:
                return None
            plain_fields[name] = {**one, "schema": value}

        def fields_of(from_attributes: bool) -> Any:
            checked = core_schema.model_fields_schema(
                plain_fields,
                model_name=fields.get("model_name"),
                extra_behavior=config.get("extra_fields_behavior"),
                from_attributes=from_attributes,
            )
            return core_schema.no_info_after_validator_function(_FIELDS_DICT, checked)

        # An instance is the model's whatever its config: its fields are read back.
        instance = core_schema.chain_schema(
            [core_schema.is_instance_schema(schema["cls"]), fields_of(True)]
        )
        taken = fields_of(bool(config.get("from_attributes")))
        return core_schema.union_schema([taken, instance], mode="left_to_right")

    def plain(self, schema: Any) -> Any | None:
        if "ref" in schema:  # inlined: the ref is the definition's, not this copy's
            schema = {key: value for key, value in schema.items() if key != "ref"}
        kind = schema.get("type")
        serialization = schema.get("serialization")
        if serialization is not None:
            applied = _serialiser(serialization)
            if applied is None:
                return None
            unserialised = {key: value for key, value in schema.items() if key != "serialization"}
            return core_schema.no_info_after_validator_function(applied, unserialised)
        if kind in _PLAIN:
            if kind == "uuid" and self.uuids_as_text:
                return core_schema.no_info_after_validator_function(str, schema)
            return schema
        if kind == "model":
            return self.as_dict(schema)
        if kind == "definition-ref":
            ref = schema["schema_ref"]
            if ref in self.resolving or ref not in self.definitions:
                return None  # a recursive model
            self.resolving.add(ref)
            try:
                return self.plain(self.definitions[ref])
            finally:
                self.resolving.discard(ref)
        if kind in _AROUND:
            inner = self.plain(schema["schema"])
            return None if inner is None else {**schema, "schema": inner}
        if kind == "list" and "items_schema" in schema:
            items = self.plain(schema["items_schema"])
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
