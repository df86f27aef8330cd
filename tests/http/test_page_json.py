"""A page of plain rows is validated into dicts and written by orjson, byte for byte as
pydantic writes ``Page[model]`` (``crm2_core.http.page_json``)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import pytest
from asyncpg.pgproto.pgproto import UUID as DriverUUID
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    computed_field,
    field_serializer,
    model_validator,
)

from crm2_core.http.page_json import plain_page
from crm2_core.http.pagination import Page, page_response
from crm2_core.money import Amount
from crm2_core.schemas import ResponseModel


class Plain(ResponseModel):
    id: uuid.UUID
    title: str
    count: int = 5
    done: bool = False
    other: uuid.UUID | None = None
    at: datetime | None = None
    day: date | None = None
    value: Amount | None = None
    tags: list[str] = Field(default_factory=list)
    kind: Literal["a", "b"] = "a"


AT = [
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 1, 5, 12, tzinfo=ZoneInfo("Europe/London")),  # offset 0, not UTC
    datetime(2026, 7, 5, 12, 0, 0, 5, tzinfo=ZoneInfo("Europe/London")),
    datetime(2026, 7, 5, 12, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=7))),
    datetime(2026, 7, 5, 12),  # naive
]


def _rows(make_uuid: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in range(12):
        row: dict[str, Any] = {"id": make_uuid(uuid.UUID(int=(n * 7919 + 1) << 96)), "title": "t"}
        if n % 2:  # every other row gives every field; the rest take the defaults
            row |= {
                "count": 2**62 + n, "done": True, "other": make_uuid(uuid.uuid4()),
                "at": AT[n % len(AT)], "day": date(2026, 2, n + 1),
                "value": [Decimal("1234.50"), Decimal("1E+2"), Decimal("0.00")][n % 3],
                "tags": ["x", 'q\u2028\x01"é'], "kind": "b", "extra": "ignored",
            }  # fmt: skip
        rows.append(row)
    rows[2]["at"] = "2026-01-01T10:00:00.5-03:00"  # parsed, as the model parses it
    return rows


def _pydantics(model: type[ResponseModel], rows: list[dict[str, Any]], cursor: str | None) -> bytes:
    adapter: TypeAdapter[Any] = TypeAdapter(Page[model])  # type: ignore[valid-type]
    return adapter.dump_json(
        adapter.validate_python({"items": rows, "next_cursor": cursor}), by_alias=True
    )


@pytest.mark.parametrize(
    "make_uuid", [lambda u: u, lambda u: DriverUUID(str(u))], ids=["uuid", "asyncpg"]
)
def test_a_plain_page_is_pydantics_bytes_written_by_orjson(make_uuid: Any) -> None:
    rows = _rows(make_uuid)
    plain = plain_page(Plain)
    assert plain is not None
    driver = type(rows[0]["id"]) is DriverUUID
    written = plain.json(rows, "next", driver)
    assert written is not None  # orjson's path, not the fallback
    assert written == _pydantics(Plain, rows, "next")
    assert page_response(Plain, rows, "next").body == written
    assert b'"value":"100"' in written and b'"extra"' not in written


def test_a_row_the_plain_validators_refuse_takes_pydantics_path_and_its_error() -> None:
    rows = _rows(lambda u: u)
    plain = plain_page(Plain)
    assert plain is not None
    bad = [*rows, {"id": "not a uuid", "title": "t"}]
    assert plain.json(bad, None, False) is None
    with pytest.raises(ValidationError) as raised:
        page_response(Plain, bad, None)
    assert raised.value.errors()[0]["loc"] == ("items", 12, "id")
    money = [{"id": uuid.uuid4(), "title": "t", "value": 1.5}]  # a float is refused as money
    with pytest.raises(ValidationError):
        page_response(Plain, money, None)


def test_an_integer_orjson_cannot_write_takes_pydantics_path() -> None:
    rows = [{"id": uuid.uuid4(), "title": "t", "count": 2**70}]
    plain = plain_page(Plain)
    assert plain is not None and plain.json(rows, None, False) is None
    assert page_response(Plain, rows, None).body == _pydantics(Plain, rows, None)


class _Inner(ResponseModel):
    ref: uuid.UUID


class _Nested(ResponseModel):
    inner: _Inner


class _Float(ResponseModel):
    ratio: float


class _Aliased(ResponseModel):
    name: str = Field(serialization_alias="Name")


class _Computed(ResponseModel):
    name: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def upper(self) -> str:
        return self.name.upper()


class _Checked(ResponseModel):
    name: str

    @model_validator(mode="after")
    def check(self) -> _Checked:
        return self


class _FieldSerialised(ResponseModel):
    name: str

    @field_serializer("name")
    def shout(self, name: str) -> str:
        return name.upper()


class _PlainDecimal(ResponseModel):
    value: Decimal  # written as pydantic writes a decimal, not as ``Amount``


class _Mapping(ResponseModel):
    data: dict[str, str]


class _Stripped(ResponseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # config that validates otherwise

    name: str


@pytest.mark.parametrize(
    "model",
    [_Float, _Aliased, _Computed, _Checked, _FieldSerialised, _PlainDecimal, _Mapping, _Stripped],
)
def test_a_model_whose_json_is_not_plain_keeps_pydantics_path(model: type[ResponseModel]) -> None:
    assert plain_page(model) is None


def test_pages_of_models_not_plain_are_still_pydantics() -> None:
    shouted = [{"name": "quiet"}]
    assert b'"QUIET"' in page_response(_FieldSerialised, shouted, None).body
    assert page_response(_Stripped, [{"name": " x "}], None).body.count(b'"x"') == 1


class _Attributes:
    """A row read by attribute, as a SQLAlchemy ``Row`` or an ORM entity is."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class _Item(BaseModel):  # no ``from_attributes``: it takes dicts and its instances only
    text: str
    done: bool = False


class _Holder(ResponseModel):
    id: uuid.UUID
    inner: _Inner
    link: _Inner | None = None
    items: list[_Item] = Field(default_factory=list)
    value: Amount | None = None


def _holder_rows(make_uuid: Any) -> list[dict[str, Any]]:
    ids = [make_uuid(uuid.UUID(int=(n * 7919 + 1) << 96)) for n in range(4)]
    return [
        {"id": i, "inner": {"ref": i}, "link": None if n % 2 else _Inner(ref=i),
         "items": [{"text": "a"}, _Item(text="b", done=True)], "value": Decimal("2.50")}
        for n, i in enumerate(ids)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "make_uuid", [lambda u: u, lambda u: DriverUUID(str(u))], ids=["uuid", "asyncpg"]
)
def test_rows_instances_and_nested_models_take_the_plain_path(make_uuid: Any) -> None:
    """Dicts, objects read by attribute and the model's instances, with nested models
    given as dicts or instances: validated into dicts, pydantic's bytes."""
    plain = plain_page(_Holder)
    assert plain is not None
    dicts = _holder_rows(make_uuid)
    expected = _pydantics(_Holder, dicts, "c")
    assert b'"value":"2.50"' in expected and b'"done":true' in expected
    driver = type(dicts[0]["id"]) is DriverUUID
    by_attribute = [_Attributes(**row) for row in dicts]
    instances = [_Holder.model_validate(row) for row in dicts]
    for rows in (dicts, by_attribute, instances):
        assert plain.json(rows, "c", driver) == expected
        assert page_response(_Holder, rows, "c").body == expected


def test_a_nested_model_without_from_attributes_refuses_other_objects_as_pydantic_does() -> None:
    plain = plain_page(_Holder)
    assert plain is not None
    rows = [{"id": uuid.uuid4(), "inner": {"ref": uuid.uuid4()}, "items": [_Attributes(text="a")]}]
    assert plain.json(rows, None, False) is None
    with pytest.raises(ValidationError):
        page_response(_Holder, rows, None)


def _double(value: Any) -> Any:
    return value * 2 if isinstance(value, int) else value


Doubled = Annotated[int, BeforeValidator(_double)]


class _Counted(BaseModel):
    n: Doubled


class _Twice(ResponseModel):
    n: Doubled
    inner: _Counted | None = None
    value: Amount | None = None


def test_an_instance_is_written_as_it_is_not_validated_again() -> None:
    """pydantic takes a model's instance as it is: its validators ran when it was made.
    A validator that is not idempotent shows whether they run again."""
    plain = plain_page(_Twice)
    assert plain is not None
    dicts = [{"n": 2, "inner": {"n": 3}, "value": Decimal("1.50")}]
    assert plain.json(dicts, None, False) == _pydantics(_Twice, dicts, None)
    assert b'"n":4' in _pydantics(_Twice, dicts, None) and b'"n":6' in _pydantics(
        _Twice, dicts, None
    )
    instances = [_Twice.model_validate(row) for row in dicts]
    written = plain.json(instances, None, False)
    assert written == _pydantics(_Twice, dicts, None)  # 4 and 6, not 8 and 12
    nested = [{"n": 2, "inner": _Counted(n=3), "value": None}]  # an instance inside a dict
    assert plain.json(nested, None, False) == _pydantics(_Twice, nested, None)
    assert b'"inner":{"n":6}' in _pydantics(_Twice, nested, None)
