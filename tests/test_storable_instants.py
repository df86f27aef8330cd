"""Request bodies refuse a time no ``UtcDateTime`` column can keep as given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from fastapi import APIRouter
from pydantic import AwareDatetime, ValidationError

from crm2_core.db.types import FIRST_INSTANT, LAST_INSTANT
from crm2_core.http.json_keys import MAX_JSON_DEPTH
from crm2_core.schemas import RequestModel, UpdateModel
from crm2_hookspecs import PluginManifest, hookimpl


class Meeting(RequestModel):
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None


class MeetingUpdate(UpdateModel, partial_of=Meeting):
    pass


@pytest.mark.parametrize(
    "sent",
    ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "0001-01-01T10:00:00+14:00"],
)
@pytest.mark.parametrize("model", [Meeting, MeetingUpdate])
def test_a_time_before_the_first_instant_is_refused_naming_the_field(
    sent: str, model: type[RequestModel]
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate({"starts_at": sent})
    assert [e["loc"] for e in raised.value.errors()] == [("starts_at",)]
    assert "first instant" in str(raised.value)


def test_the_first_instant_and_ordinary_times_are_kept_as_sent() -> None:
    sent = datetime.fromisoformat("2026-12-07T10:00:00+14:00")
    meeting = Meeting.model_validate({"starts_at": FIRST_INSTANT, "ends_at": sent})
    assert meeting.starts_at == FIRST_INSTANT
    assert meeting.ends_at is not None and meeting.ends_at.utcoffset() == sent.utcoffset()


@pytest.mark.parametrize("sent", ["9999-12-31T12:00:00-14:00", "9999-12-31T23:59:59.999999Z"])
def test_a_time_past_the_last_instant_is_the_last_instant(sent: str) -> None:
    assert Meeting.model_validate({"starts_at": sent}).starts_at == LAST_INSTANT


class Rota(RequestModel):
    shifts: list[AwareDatetime] = []
    by_name: dict[str, AwareDatetime] = {}
    span: tuple[AwareDatetime, AwareDatetime] | None = None


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"shifts": ["2026-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00"]}, "[1]"),
        ({"by_name": {"ada": "0001-01-01T10:00:00+14:00"}}, "ada"),
        ({"span": ["0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00Z"]}, "[0]"),
    ],
)
def test_a_nested_time_before_the_first_instant_is_refused_naming_its_path(
    body: dict[str, object], path: str
) -> None:
    """Only a top-level field was checked: a nested one was clamped to year 1 when stored."""
    with pytest.raises(ValidationError) as raised:
        Rota.model_validate(body)
    (error,) = raised.value.errors()
    assert error["loc"] == (next(iter(body)),)
    assert error["msg"].startswith(f"Value error, {path}: must be at or after")


def test_a_nested_time_past_the_last_instant_is_the_last_instant() -> None:
    rota = Rota.model_validate(
        {"shifts": ["9999-12-31T12:00:00-14:00"], "by_name": {"x": "9999-12-31T12:00:00-14:00"}}
    )
    assert rota.shifts == [LAST_INSTANT]
    assert rota.by_name == {"x": LAST_INSTANT}


class Rotas:
    manifest = PluginManifest(name="rotas", title="Nested times (test only)")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/rotas")

        @router.post("")
        async def create(body: Rota) -> dict[str, list[str]]:
            return {"shifts": [s.isoformat() for s in body.shifts]}

        return [router]


async def test_a_nested_time_before_the_first_instant_is_a_422_problem(
    crm2_app_factory: Any,
) -> None:
    crm2 = await crm2_app_factory(plugins=["rotas"], extra_plugins=(Rotas(),))
    body = {"shifts": ["2026-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00"]}
    response = await crm2.client.post("/api/v1/rotas", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["loc"] == ["body", "shifts"] and error["msg"].startswith("Value error, [1]:")


class Loose(RequestModel):
    value: Any = None


def _nested(depth: int, leaf: Any) -> Any:
    for level in range(depth):  # lists and objects by turns
        leaf = {"a": leaf} if level % 2 else [leaf]
    return leaf


@pytest.mark.parametrize("depth", [1_000, 20_000])
def test_a_deeply_nested_any_field_is_walked_without_recursion(depth: int) -> None:
    """``storable_instants`` and ``check_storable`` recursed into an ``Any`` field: a
    JSON value some 600 levels deep was a RecursionError (a 500)."""
    value = _nested(depth, "leaf")
    assert Loose.model_validate({"value": value}).value is value
    with pytest.raises(ValidationError, match="NUL character"):
        Loose.model_validate({"value": _nested(depth, "a\x00b")})
    inner = _nested(depth, datetime.fromisoformat("9999-12-31T12:00:00-14:00"))
    kept = Loose.model_validate({"value": inner}).value
    for level in reversed(range(depth)):
        kept = kept["a"] if level % 2 else kept[0]
    assert kept == LAST_INSTANT


class Loosely:
    manifest = PluginManifest(name="loosely", title="An Any field (test only)")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/loosely")

        @router.post("")
        async def create(body: Loose) -> dict[str, bool]:
            return {"ok": body.value is not None}

        return [router]


async def test_an_any_field_nested_as_deep_as_json_reads_is_no_500(crm2_app_factory: Any) -> None:
    crm2 = await crm2_app_factory(plugins=["loosely"], extra_plugins=(Loosely(),))
    headers = {"Content-Type": "application/json"}
    for depth in (127, 128, 300, 600, 990, 2_000, 100_000):  # the body's object is one more
        body = b'{"value": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
        response = await crm2.client.post("/api/v1/loosely", content=body, headers=headers)
        if depth <= MAX_JSON_DEPTH - 1:
            assert response.status_code == 200, (depth, response.text[:300])
            continue
        assert response.status_code == 400, (depth, response.text[:300])
        assert response.json()["type"].endswith("json-too-deep"), response.text[:300]
        assert f"more than {MAX_JSON_DEPTH} levels" in response.json()["detail"]
