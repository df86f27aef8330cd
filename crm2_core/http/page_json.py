"""A list page of plain rows, validated into dicts and written by orjson.

``page_response`` validates a page's rows (a response model's fields as dicts, rows
read by attribute, or the model's instances) and writes them as JSON. Through pydantic
that means a model instance per row and its serialiser walking each one: two thirds of
the page's time in ``page_response`` on a deals page. For a response model whose JSON
is plain (strings, integers, booleans, UUIDs, dates and datetimes, literals, lists and
nested models of those, and plain serialisers that return a string, integer or boolean,
such as ``Amount``'s), the model's own field schemas validate the rows into dicts (each
plain serialiser applied once the field is valid) and orjson writes them: the same
bytes, without a model instance per row. The model's instances are read back as they
are, as pydantic takes them (their validators ran when they were made).

Anything else in the model (a float, a dict, a field serialiser that needs the
instance, an alias, a computed field, model validators, config that changes how
fields validate, a recursive model) makes ``plain_page`` ``None``: such a page keeps
pydantic's path. So does a page these validators refuse (pydantic then raises its
error) or orjson cannot write (an integer beyond 64 bits).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic_core import SchemaValidator, ValidationError, core_schema

# Core schema types whose validated values orjson writes as pydantic does.
_PLAIN = frozenset({"str", "int", "bool", "uuid", "datetime", "date"})
# Wrappers whose value is their inner schema's (validators that run around it).
_VALIDATORS = frozenset({"function-before", "function-after"})
_AROUND = frozenset({"nullable", "default", *_VALIDATORS})
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
    """Validators of ``{"items": [...], "next_cursor": ...}`` returning plain dicts, one
    per kind of page (made at first use): UUIDs kept as objects (orjson writes
    ``uuid.UUID`` itself) or made text (asyncpg's ``UUID``); rows given as the model's
    fields or as its instances."""

    model: type[BaseModel]
    validators: dict[tuple[bool, bool], SchemaValidator] = field(default_factory=dict)

    def json(
        self, items: Sequence[Any], next_cursor: str | None, driver_uuids: bool
    ) -> bytes | None:
        """The page's JSON; ``None`` when these validators refuse the rows or orjson
        cannot write them: pydantic's path decides then (and raises what it refuses)."""
        kind = (driver_uuids, isinstance(items[0], self.model))
        validator = self.validators.get(kind)
        if validator is None:
            schema = _page_schema(self.model, uuids_as_text=kind[0], instances=kind[1])
            validator = self.validators[kind] = SchemaValidator(schema)
        try:
            page = validator.validate_python({"items": items, "next_cursor": next_cursor})
            return orjson.dumps(page, option=_ORJSON_OPTIONS)
        except (ValidationError, orjson.JSONEncodeError):
            return None


@cache
def plain_page(model: type[BaseModel]) -> PlainPage | None:
    """``model``'s page validators when its JSON is plain (see the module), else ``None``."""
    if _page_schema(model, uuids_as_text=False, instances=False) is None:
        return None
    return PlainPage(model)


def _page_schema(model: type[BaseModel], *, uuids_as_text: bool, instances: bool) -> Any:
    row = _Walk.of(model.__pydantic_core_schema__, uuids_as_text, instances)
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
    writes as pydantic would write it; ``None`` where a part cannot.

    ``validating``: the model's own validators run, as they do on what the model is
    given. An instance of the model is not validated again by pydantic, so it is read
    through a second walk without them (``validating=False``): each field's value only
    checked to be of its type, and plain serialisers applied."""

    uuids_as_text: bool
    definitions: dict[str, Any]  # a shared model's schema by its ref, inlined where used
    validating: bool = True
    resolving: set[str] = field(default_factory=set)  # refs being inlined: a recursion

    @classmethod
    def of(cls, schema: Any, uuids_as_text: bool, instances: bool) -> Any | None:
        """A page's row: what the model takes but its instances, or its instances only
        (a page's rows come one way, and telling them apart costs a call per row)."""
        definitions: dict[str, Any] = {}
        if schema.get("type") == "definitions":
            definitions = {item["ref"]: item for item in schema["definitions"]}
            schema = schema["schema"]
        return cls(uuids_as_text, definitions).as_dict(schema, row=instances)

    def as_dict(self, schema: Any, row: bool | None = None) -> Any | None:
        """A model's schema made to take what the model takes (its fields as a dict, an
        object's attributes where its config reads them, an instance of it) and give
        its fields as a dict. ``row``: a page's row, ``True`` an instance, ``False``
        anything else."""
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
        for name, one in fields["fields"].items():
            if any(key.startswith("serialization_exclude") for key in one):
                return None
            if one.get("serialization_alias", name) != name or _has_any(one, "validation_alias"):
                return None
        read_back = self if not self.validating else replace(self, validating=False)
        written = read_back.fields(fields["fields"])
        if written is None:
            return None

        def fields_of(plain_fields: dict[str, Any], from_attributes: bool) -> Any:
            checked = core_schema.model_fields_schema(
                plain_fields,
                model_name=fields.get("model_name"),
                extra_behavior=config.get("extra_fields_behavior"),
                from_attributes=from_attributes,
            )
            return core_schema.no_info_after_validator_function(_FIELDS_DICT, checked)

        instance = core_schema.chain_schema(
            [core_schema.is_instance_schema(schema["cls"]), fields_of(written, True)]
        )
        if not self.validating or row:
            return instance
        validated = self.fields(fields["fields"])
        if validated is None:
            return None
        taken = fields_of(validated, bool(config.get("from_attributes")))
        if row is False:
            return taken
        model = schema["cls"]
        return core_schema.tagged_union_schema(
            {"instance": instance, "taken": taken},
            discriminator=lambda value: "instance" if isinstance(value, model) else "taken",
        )

    def fields(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        plain_fields: dict[str, Any] = {}
        for name, one in fields.items():
            value = self.plain(one["schema"])
            if value is None:
                return None
            plain_fields[name] = {**one, "schema": value}
        return plain_fields

    def plain(self, schema: Any) -> Any | None:
        if "ref" in schema:  # inlined: the ref is the definition's, not this copy's
            schema = {key: value for key, value in schema.items() if key != "ref"}
        kind = schema.get("type")
        serialization = schema.get("serialization")
        if serialization is not None:
            applied = _serialiser(serialization)
            if applied is None:
                return None
            if not self.validating:  # the instance's value is valid: only written
                return core_schema.no_info_plain_validator_function(applied)
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
        if kind in _VALIDATORS and not self.validating:
            return self.plain(schema["schema"])
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
