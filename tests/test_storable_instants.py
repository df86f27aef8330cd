"""Request bodies refuse a time no ``UtcDateTime`` column can keep as given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from fastapi import APIRouter
from pydantic import AwareDatetime, ValidationError

from crm2_core.db.types import FIRST_INSTANT, LAST_INSTANT
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
