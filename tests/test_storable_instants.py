"""Request bodies refuse a time no ``UtcDateTime`` column can keep as given."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import AwareDatetime, ValidationError

from crm2_core.db.types import FIRST_INSTANT, LAST_INSTANT
from crm2_core.schemas import RequestModel, UpdateModel


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
