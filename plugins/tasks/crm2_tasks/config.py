"""Tasks settings (``CRM2_TASKS_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm2_tasks.calendar import CalendarError, known_zone


class TasksSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_TASKS_", env_file=".env", extra="ignore")

    timezone: str = Field(
        "UTC",
        description="IANA zone of the built-in calendar (Mon-Fri 09:00-17:00), of 'due today' "
        "and of recurring tasks created without one",
    )
    timer_interval_seconds: int = Field(
        60, ge=5, le=3600, description="how often reminders and SLA timers are checked, seconds"
    )
    timer_batch: int = Field(
        500, ge=1, le=10_000, description="reminders / SLA timers claimed per transaction"
    )
    sla_warning_share: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="share of an SLA target after which tasks.sla.warning fires "
        "(a policy may set its own)",
    )
    feed_days_back: int = Field(
        30, ge=0, le=3660, description="the iCalendar feed shows tasks due up to this many days ago"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            known_zone(value)
        except CalendarError as exc:
            raise ValueError(str(exc)) from exc
        return value
