"""The daily policy maintenance: expire ended policies, announce renewals coming due.

Safe to run twice and at once: every change is a conditional UPDATE that
re-checks its condition (``status = 'active'``, ``renewal_notified_on IS
NULL``), and the events of a batch commit with the batch, so a policy is
announced exactly once whoever gets there first.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, cast

from crm2_core.api import publish, utcnow
from crm2_deals.events import PolicyExpired, PolicyRenewalDue
from crm2_deals.repository import policies as repo
from crm2_deals.service.activities import add_system_activity
from crm2_hookspecs import Crm2Context, ScheduledJob

if TYPE_CHECKING:
    from crm2_core.api import AppContext

BATCH = 500


async def expire_policies(context: AppContext, today: date) -> int:
    """Active policies whose end date passed → ``expired``, with event and timeline entry."""
    total = 0
    while True:
        async with context.session_factory() as session:
            rows = await repo.expire_batch(session, today, BATCH)
            for row in rows:
                event = PolicyExpired(
                    client_id=row.client_id, end_date=row.end_date, owner_id=row.owner_id
                )
                publish(session, event, subject=row.id)
                add_system_activity(
                    session,
                    client_id=row.client_id,
                    owner_id=row.owner_id,
                    policy_id=row.id,
                    subject="Policy expired",
                    body=f"ended on {row.end_date}",
                )
            await session.commit()
        total += len(rows)
        if len(rows) < BATCH:
            return total


async def announce_renewals(context: AppContext, today: date, notice_days: int) -> int:
    """``deals.policy.renewal_due`` once per policy end date, ``notice_days`` ahead."""
    # near 9999-12-31 (crm2 deals run-jobs --today …) the horizon is the calendar's end
    horizon = today + min(timedelta(days=notice_days), date.max - today)
    total = 0
    while True:
        async with context.session_factory() as session:
            rows = await repo.renewal_due_batch(session, today, horizon, BATCH)
            for row in rows:
                event = PolicyRenewalDue(
                    client_id=row.client_id,
                    end_date=row.end_date,
                    days_left=(row.end_date - today).days,
                    owner_id=row.owner_id,
                )
                publish(session, event, subject=row.id)
            await session.commit()
        total += len(rows)
        if len(rows) < BATCH:
            return total


async def run_policy_maintenance(context: AppContext, today: date | None = None) -> dict[str, int]:
    """Expire, then announce renewals; returns how many policies each step changed."""
    today = today or utcnow().date()
    notice_days: int = context.plugin_settings("deals").renewal_notice_days
    expired = await expire_policies(context, today)
    renewal_due = await announce_renewals(context, today, notice_days)
    return {"expired": expired, "renewal_due": renewal_due}


async def _scheduled(context: Crm2Context) -> None:
    await run_policy_maintenance(cast("AppContext", context))


def scheduled_jobs() -> list[ScheduledJob]:
    # Hourly although the work is daily: a missed run (restart, downtime)
    # catches up within the hour, and a repeated run changes nothing.
    return [ScheduledJob(name="policy_maintenance", interval_seconds=3600, run=_scheduled)]
