"""The daily policy job: expiry and renewal notices, each exactly once."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from crm2_deals.jobs import run_policy_maintenance
from crm2_deals.models import Activity, Policy
from deals_kit import API, Deals
from factories import events_of, get_row, make_client, make_policy, rows

from crm2_core.api import utcnow
from crm2_core.testing import TEST_JWT_SECRET, build_cli

# Months ahead of the real today: the policy job the app runs at start on the real clock
# must find nothing to expire or announce among this module's policies.
TODAY = date(utcnow().year + 1, 3, 15)


async def test_expiry_marks_ended_active_policies_once(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    ended = await make_policy(deals.app, client, end_date=TODAY - timedelta(days=1))
    ends_today = await make_policy(deals.app, client, end_date=TODAY)
    draft = await make_policy(deals.app, client, end_date=TODAY - timedelta(days=9), status="draft")
    assert await run_policy_maintenance(deals.app.context, today=TODAY) == {
        "expired": 1,
        "renewal_due": 1,  # the one ending today is still active: due today
    }
    assert (await get_row(deals.app, Policy, ended.id)).status == "expired"
    assert (await get_row(deals.app, Policy, ends_today.id)).status == "active"
    assert (await get_row(deals.app, Policy, draft.id)).status == "draft"
    (event,) = await events_of(deals.app, "deals.policy.expired")
    assert event.subject == str(ended.id)
    assert event.data["owner_id"] == str(admin.id) and event.actor_kind == "system"
    (entry,) = await rows(deals.app, Activity, Activity.policy_id == ended.id)
    assert (entry.kind, entry.subject) == ("system", "Policy expired")

    again = await run_policy_maintenance(deals.app.context, today=TODAY)
    assert again == {"expired": 0, "renewal_due": 0}
    assert len(await events_of(deals.app, "deals.policy.expired")) == 1
    assert len(await events_of(deals.app, "deals.policy.renewal_due")) == 1


async def test_renewal_due_is_announced_once_within_the_notice_period(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    soon = await make_policy(deals.app, client, end_date=TODAY + timedelta(days=30))
    later = await make_policy(deals.app, client, end_date=TODAY + timedelta(days=31))
    await make_policy(deals.app, client, end_date=TODAY + timedelta(days=5), status="cancelled")
    result = await run_policy_maintenance(deals.app.context, today=TODAY)
    assert result["renewal_due"] == 1
    (event,) = await events_of(deals.app, "deals.policy.renewal_due")
    assert event.subject == str(soon.id)
    assert event.data["days_left"] == 30
    assert event.data["end_date"] == str(soon.end_date)
    assert (await get_row(deals.app, Policy, soon.id)).renewal_notified_on == TODAY

    await run_policy_maintenance(deals.app.context, today=TODAY)
    await run_policy_maintenance(deals.app.context, today=TODAY + timedelta(days=1))
    events = await events_of(deals.app, "deals.policy.renewal_due")
    assert [e.subject for e in events] == [str(soon.id), str(later.id)]


async def test_a_new_end_date_earns_a_new_notice(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    policy = await make_policy(deals.app, client, end_date=TODAY + timedelta(days=10))
    await run_policy_maintenance(deals.app.context, today=TODAY)
    read = await deals.client.get(f"{API}/policies/{policy.id}", headers=admin.headers)
    r = await deals.client.patch(
        f"{API}/policies/{policy.id}",
        json={"end_date": str(TODAY + timedelta(days=20))},
        headers={**admin.headers, "If-Match": read.headers["etag"]},
    )
    assert r.json()["renewal_notified_on"] is None
    await run_policy_maintenance(deals.app.context, today=TODAY)
    assert len(await events_of(deals.app, "deals.policy.renewal_due")) == 2


async def test_concurrent_runs_announce_each_policy_once(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    for days in range(-6, 0):
        await make_policy(deals.app, client, end_date=TODAY + timedelta(days=days))
    for days in range(1, 7):
        await make_policy(deals.app, client, end_date=TODAY + timedelta(days=days))
    results = await asyncio.gather(
        *(run_policy_maintenance(deals.app.context, today=TODAY) for _ in range(3))
    )
    assert sum(r["expired"] for r in results) == 6
    assert sum(r["renewal_due"] for r in results) == 6
    assert len(await events_of(deals.app, "deals.policy.expired")) == 6
    assert len(await events_of(deals.app, "deals.policy.renewal_due")) == 6
    assert len(await rows(deals.app, Activity, Activity.subject == "Policy expired")) == 6


async def test_the_notice_period_comes_from_the_settings(crm2_app_factory: object) -> None:
    from deals_kit import seed_defaults

    app = await crm2_app_factory(  # type: ignore[operator]
        plugins=["deals"], plugin_settings={"deals": {"renewal_notice_days": 7}}
    )
    await seed_defaults(app)
    user_id = await app.create_user("admin")
    client = await make_client(app, user_id)
    await make_policy(app, client, end_date=TODAY + timedelta(days=7))
    await make_policy(app, client, end_date=TODAY + timedelta(days=8))
    assert (await run_policy_maintenance(app.context, today=TODAY))["renewal_due"] == 1


async def test_the_job_is_registered_with_the_scheduler(deals: Deals) -> None:
    (job,) = [
        job
        for plugin, job in deals.app.context.plugins.collect(
            "crm2_scheduled_jobs", context=deals.app.context
        )
        if plugin == "deals"
    ]
    assert (job.name, job.interval_seconds) == ("policy_maintenance", 3600)
    admin = await deals.user("admin")
    policy = await make_policy(
        deals.app, await make_client(deals.app, admin.id), end_date=date.today() - timedelta(days=1)
    )
    await job.run(deals.app.context)
    assert (await get_row(deals.app, Policy, policy.id)).status == "expired"


async def test_cli_runs_the_job_for_a_given_day(
    deals: Deals, crm2_database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    policy = await make_policy(deals.app, client, end_date=TODAY - timedelta(days=1))
    for name, value in {
        "CRM2_DATABASE_URL": crm2_database.url,
        "CRM2_PLUGINS": "deals",
        "CRM2_ENV": "test",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM2_REDIS_URL", raising=False)
    command = ["deals", "run-jobs", "--today", TODAY.isoformat()]
    result = await asyncio.to_thread(CliRunner().invoke, build_cli(), command)
    assert result.exit_code == 0, result.output
    assert "policies expired: 1, renewal_due: 0" in result.output
    assert (await get_row(deals.app, Policy, policy.id)).status == "expired"
