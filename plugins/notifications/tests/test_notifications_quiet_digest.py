"""Preferences: quiet hours and the daily digest in the user's zone, on a controllable clock,
across both DST changes of Europe/Berlin in 2026 (29 March, 25 October)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from crm2_notifications import quiet
from crm2_notifications.clock import set_clock
from crm2_notifications.models import Delivery, UserSettings
from crm2_notifications.service.delivery import send_due
from crm2_notifications.service.digest import send_digests
from notifications_kit import (
    API,
    Notifications,
    SmtpServer,
    User,
    delivered_updates_refused,
    shipped_rule,
)

BERLIN = quiet.zone("Europe/Berlin")


def test_quiet_hours_end_in_local_time_across_spring_forward() -> None:
    # Sat 28 March 23:30 CET (22:30 UTC); the night the clocks go 02:00 -> 03:00
    now = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
    release = quiet.release_at(now, BERLIN, "22:00", "07:00")
    assert release == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 07:00 CEST
    assert quiet.release_at(now, BERLIN, "08:00", "20:00") == now  # outside: at once


def test_quiet_hours_across_fall_back_and_a_gap_time() -> None:
    now = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)  # 23:00 CEST
    assert quiet.release_at(now, BERLIN, "22:00", "07:00") == datetime(
        2026, 10, 25, 6, 0, tzinfo=UTC
    )
    # quiet until 02:30, a time that does not exist on 29 March: released at 03:30 CEST
    early = datetime(2026, 3, 29, 0, 10, tzinfo=UTC)  # 01:10 CET
    assert quiet.release_at(early, BERLIN, "00:00", "02:30") == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )


def test_digest_is_due_once_per_local_day_at_its_hour() -> None:
    before = datetime(2026, 10, 25, 6, 59, tzinfo=UTC)  # 07:59 CET (after fall back)
    at = datetime(2026, 10, 25, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert quiet.digest_due(before, BERLIN, 8, None) is None
    assert quiet.digest_due(at, BERLIN, 8, None) == date(2026, 10, 25)
    assert quiet.digest_due(at, BERLIN, 8, date(2026, 10, 25)) is None


def test_a_digest_due_in_quiet_hours_waits_until_they_end() -> None:
    nov = lambda d, h, m=0: datetime(2026, 11, d, h - 1, m, tzinfo=UTC)  # noqa: E731 (CET)
    # due at 08:00, quiet 07:00-09:00: not at 08:30, at 09:00
    assert quiet.digest_due(nov(10, 8, 30), BERLIN, 8, None, "07:00", "09:00") is None
    assert quiet.digest_due(nov(10, 9), BERLIN, 8, None, "07:00", "09:00") == date(2026, 11, 10)
    # due at 23:00 in 22:00-07:00: held past midnight, sent at 07:00 as the 10th's digest
    assert quiet.digest_due(nov(10, 23, 30), BERLIN, 23, None, "22:00", "07:00") is None
    assert quiet.digest_due(nov(11, 6, 59), BERLIN, 23, None, "22:00", "07:00") is None
    assert quiet.digest_due(nov(11, 7), BERLIN, 23, None, "22:00", "07:00") == date(2026, 11, 10)
    sent_10th = date(2026, 11, 10)
    assert quiet.digest_due(nov(11, 7), BERLIN, 23, sent_10th, "22:00", "07:00") is None
    # today's was not sent at 08:00 (nothing to send then): not in the night's quiet hours
    assert quiet.digest_due(nov(10, 22, 35), BERLIN, 8, date(2026, 11, 9), "22:00", "07:00") is None
    # and without quiet hours nothing changes: a missed day is not sent before today's hour
    assert quiet.digest_due(nov(11, 3), BERLIN, 23, None) is None


async def _prefs(n: Notifications, user: User, **body: Any) -> Any:
    current = await n.client.get(f"{API}/preferences", headers=user.headers)
    assert current.status_code == 200
    headers = {**user.headers, "If-Match": current.headers["ETag"]}
    return await n.client.patch(f"{API}/preferences", json=body, headers=headers)


async def test_quiet_hours_hold_mail_and_a_digest_folds_the_rest(
    crm2_app_factory: Any, smtp_server: SmtpServer
) -> None:
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": smtp_server.settings(digest_hour=8)},
        scheduler_enabled=False,  # the jobs run here on the test's clock, not the real one
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    admin, quiet_user, digest_user = await n.users("admin", "agent", "agent")
    await n.rule(admin, channels=["inapp", "email"], recipients={"data_fields": ["owner_id"]})
    changed = await _prefs(
        n, quiet_user, timezone="Europe/Berlin", quiet_start="22:00", quiet_end="07:00"
    )
    assert changed.status_code == 200, changed.text
    assert (
        await _prefs(
            n,
            digest_user,
            timezone="Europe/Berlin",
            rules=[{"channel": "email", "event_type": "*", "mode": "digest"}],
        )
    ).status_code == 200

    night = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    set_clock(n.context, lambda: night)
    for owner in (quiet_user, digest_user, digest_user):
        await n.ping(admin, title=f"for {owner.email}", owner_id=owner.id)
    await n.settle()
    assert smtp_server.mailbox.messages == []  # quiet for one, digest for the other
    assert len(await n.feed(quiet_user)) == 1  # the feed is not held

    morning = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 07:00 CEST
    await send_due(n.context, now=morning)
    (held,) = smtp_server.mailbox.messages
    assert held["To"].addresses[0].addr_spec == quiet_user.email

    assert await send_digests(n.context, now=datetime(2026, 3, 29, 5, 59, tzinfo=UTC)) == 0
    assert await send_digests(n.context, now=datetime(2026, 3, 29, 6, 0, tzinfo=UTC)) == 1  # 08:00
    assert await send_digests(n.context, now=datetime(2026, 3, 29, 9, 0, tzinfo=UTC)) == 0
    digest = smtp_server.mailbox.messages[-1]
    assert digest["To"].addresses[0].addr_spec == digest_user.email
    assert digest["Subject"].startswith("crm2: 2 notification(s) of 2026-03-29")
    text = digest.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert text.count(f"for {digest_user.email}") == 2
    assert {d.status for d in await n.rows(Delivery)} == {"delivered"}


async def test_preferences_are_validated_and_off_means_off(
    notifications: Notifications,
) -> None:
    admin, owner = await notifications.users("admin", "agent")
    for body in (
        {"timezone": "Mars/Olympus"},
        {"timezone": "Europe"},  # a tzdata folder, not a zone
        {"quiet_start": "22:00"},
        {"quiet_start": "25:00", "quiet_end": "07:00"},
        {"rules": [{"channel": "pigeon", "event_type": "*", "mode": "off"}]},
        {"rules": [{"channel": "inapp", "event_type": "*", "mode": "loud"}]},
        {"timezone": None},  # null is refused, not silently "keep it"
        {"rules": None},
    ):
        response = await _prefs(notifications, owner, **body)
        assert response.status_code == 422, (body, response.text)
    stale = {**owner.headers, "If-Match": '"v99"'}
    patched = await notifications.client.patch(f"{API}/preferences", json={}, headers=stale)
    assert patched.status_code == 412
    off = [{"channel": "inapp", "event_type": "ping.thing.happened", "mode": "off"}]
    assert (await _prefs(notifications, owner, rules=off)).status_code == 200
    await notifications.rule(admin)
    await notifications.ping(admin, owner_id=owner.id)
    await notifications.settle()
    assert await notifications.feed(owner) == []


async def test_quiet_start_equal_to_quiet_end_is_refused(notifications: Notifications) -> None:
    (owner,) = await notifications.users("agent")
    response = await _prefs(notifications, owner, quiet_start="10:00", quiet_end="10:00")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "omit both" in response.json()["detail"]
    prefs = await notifications.client.get(f"{API}/preferences", headers=owner.headers)
    assert (prefs.json()["quiet_start"], prefs.json()["quiet_end"]) == (None, None)
    assert await notifications.rows(UserSettings) == []


async def test_a_stored_equal_quiet_pair_still_means_none_and_round_trips(
    notifications: Notifications,
) -> None:
    (owner,) = await notifications.users("agent")
    # saved before equal pairs were refused: it meant (and still means) no quiet hours
    async with notifications.context.session_factory() as session:
        session.add(UserSettings(user_id=owner.id, quiet_start="10:00", quiet_end="10:00"))
        await session.commit()
    now = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)
    assert quiet.release_at(now, BERLIN, "10:00", "10:00") == now
    shown = (await notifications.client.get(f"{API}/preferences", headers=owner.headers)).json()
    assert (shown["quiet_start"], shown["quiet_end"]) == (None, None)
    # a client sending back what it read, or only a new zone, is not refused for it
    again = await _prefs(notifications, owner, quiet_start=None, quiet_end=None)
    assert again.status_code == 200, again.text
    zone = await _prefs(notifications, owner, timezone="Europe/Berlin")
    assert zone.status_code == 200, zone.text
    half = await _prefs(notifications, owner, quiet_start="22:00")  # the end is none, too
    assert half.status_code == 422, half.text


async def test_a_retry_that_falls_in_quiet_hours_waits_until_they_end(
    crm2_app_factory: Any,
) -> None:
    import ping_plugin
    from notifications_kit import free_port

    ping_plugin.THINGS.clear()
    closed = {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False}
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": {**closed, "retry_base_seconds": 600}},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    admin, owner = await n.users("admin", "agent")
    await n.rule(admin, channels=["inapp", "email"], recipients={"data_fields": ["owner_id"]})
    changed = await _prefs(
        n, owner, timezone="Europe/Berlin", quiet_start="22:00", quiet_end="07:00"
    )
    assert changed.status_code == 200, changed.text

    evening = datetime(2026, 11, 10, 20, 55, tzinfo=UTC)  # 21:55 CET: not quiet yet
    set_clock(n.context, lambda: evening)
    await n.ping(admin, owner_id=owner.id)
    await n.settle()
    (delivery,) = await n.rows(Delivery)
    assert delivery.attempts == 1 and delivery.status == "pending"  # refused: retried later
    # the retry is due 5-10 minutes on, in the quiet hours: it waits for 07:00 CET
    await send_due(n.context, now=datetime(2026, 11, 10, 21, 10, tzinfo=UTC))  # 22:10 CET
    (delivery,) = await n.rows(Delivery)
    assert delivery.attempts == 1 and delivery.status == "pending"
    assert delivery.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 11, 11, 6, 0, tzinfo=UTC)


def test_quiet_hours_ending_in_the_repeated_hour_end_at_its_second_instance() -> None:
    # 25 October 2026 in Berlin: 03:00 CEST -> 02:00 CET, so 02:00-03:00 happens twice
    first_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    for now in (
        datetime(2026, 10, 24, 22, 30, tzinfo=UTC),  # 00:30 CEST
        datetime(2026, 10, 25, 0, 10, tzinfo=UTC),  # 02:10 CEST, the first pass
        first_0230,  # 02:30 CEST: the wall clock will show 02:00-02:30 once more
        datetime(2026, 10, 25, 0, 50, tzinfo=UTC),  # 02:50 CEST
        datetime(2026, 10, 25, 1, 10, tzinfo=UTC),  # 02:10 CET, the second pass
    ):
        assert quiet.release_at(now, BERLIN, "22:00", "02:30") == second_0230, now
        assert quiet.release_at(now, BERLIN, "00:00", "02:30") == second_0230, now
    assert quiet.release_at(second_0230, BERLIN, "22:00", "02:30") == second_0230  # over
    # an hour that starts in the repeated hour starts at its first instance
    assert quiet.release_at(first_0230, BERLIN, "02:15", "06:00") == datetime(
        2026, 10, 25, 5, 0, tzinfo=UTC
    )
    # a day with no change is unaffected
    assert quiet.release_at(datetime(2026, 10, 26, 1, 0, tzinfo=UTC), BERLIN, "22:00", "02:30") == (
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    )


async def _roles(n: Notifications, admin: User, user: User, **body: Any) -> None:
    current = await n.client.get(f"/api/v1/auth/users/{user.id}", headers=admin.headers)
    headers = {**admin.headers, "If-Match": current.headers["ETag"]}
    changed = await n.client.patch(f"/api/v1/auth/users/{user.id}", json=body, headers=headers)
    assert changed.status_code == 200, changed.text


async def test_a_held_mail_to_someone_who_lost_the_right_to_it_is_skipped(
    crm2_app_factory: Any, smtp_server: SmtpServer
) -> None:
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": smtp_server.settings(digest_hour=8)},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    admin, demoted, disabled, digest_user, kept = await n.users(
        "admin", "agent", "agent", "agent", "agent"
    )
    await n.rule(admin, channels=["inapp", "email"], recipients={"data_fields": ["owner_id"]})
    for user in (demoted, disabled, kept):
        quiet_night = {"timezone": "Europe/Berlin", "quiet_start": "22:00", "quiet_end": "07:00"}
        assert (await _prefs(n, user, **quiet_night)).status_code == 200
    digest = [{"channel": "email", "event_type": "*", "mode": "digest"}]
    assert (await _prefs(n, digest_user, timezone="Europe/Berlin", rules=digest)).status_code == 200
    created = await n.client.post(
        "/api/v1/auth/roles",
        json={"name": "outsider", "description": "no notifications", "permissions": []},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text

    set_clock(n.context, lambda: datetime(2026, 3, 28, 22, 30, tzinfo=UTC))  # 23:30 in Berlin
    for owner in (demoted, disabled, digest_user, kept):
        await n.ping(admin, title=f"for {owner.email}", owner_id=owner.id)
    await n.settle()
    assert smtp_server.mailbox.messages == []  # all held: quiet hours, digest
    await _roles(n, admin, demoted, roles=["outsider"])
    await _roles(n, admin, disabled, is_active=False)
    await _roles(n, admin, digest_user, roles=["outsider"])

    await send_due(n.context, now=datetime(2026, 3, 29, 5, 0, tzinfo=UTC))  # 07:00 CEST
    assert await send_digests(n.context, now=datetime(2026, 3, 29, 6, 0, tzinfo=UTC)) == 0
    assert [m["To"].addresses[0].addr_spec for m in smtp_server.mailbox.messages] == [kept.email]
    status = {d.user_id: (d.status, d.last_error) for d in await n.rows(Delivery)}
    assert status[kept.id] == ("delivered", None)
    for user in (demoted, disabled, digest_user):
        state, reason = status[user.id]
        assert state == "skipped" and "notifications:read" in (reason or ""), (user, status)
    log = await n.client.get(
        f"{API}/deliveries", params={"status": "skipped"}, headers=admin.headers
    )
    assert log.status_code == 200 and len(log.json()["items"]) == 3


@pytest.fixture
async def email_digest(
    crm2_app_factory: Any, smtp_server: SmtpServer
) -> tuple[Notifications, User]:
    """A user (Berlin) with e-mail in digest mode and two notifications waiting for
    their 08:00 digest of 10 November 2026."""
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": smtp_server.settings(digest_hour=8)},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    admin, owner = await n.users("admin", "agent")
    await n.rule(admin, channels=["email"], recipients={"data_fields": ["owner_id"]})
    digest_mode = [{"channel": "email", "event_type": "*", "mode": "digest"}]
    changed = await _prefs(n, owner, timezone="Europe/Berlin", rules=digest_mode)
    assert changed.status_code == 200, changed.text
    set_clock(n.context, lambda: datetime(2026, 11, 10, 5, 0, tzinfo=UTC))
    for title in ("one", "two"):
        await n.ping(admin, title=title, owner_id=owner.id)
    await n.settle()
    return n, owner


DIGEST_DUE = datetime(2026, 11, 10, 7, 0, tzinfo=UTC)  # 08:00 CET


async def test_a_failed_digest_is_retried_as_one_digest_not_as_single_messages(
    email_digest: tuple[Notifications, User], smtp_server: SmtpServer
) -> None:
    n, _owner = email_digest
    smtp_server.mailbox.refuse = "451 4.3.0 try again later"
    assert await send_digests(n.context, now=DIGEST_DUE) == 0
    assert {d.status for d in await n.rows(Delivery)} == {"digest"}  # not two singles
    await send_due(n.context, now=DIGEST_DUE)
    assert smtp_server.mailbox.messages == []

    smtp_server.mailbox.refuse = None
    later = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)  # past the backoff, the same day
    assert await send_digests(n.context, now=later) == 1
    (digest,) = smtp_server.mailbox.messages
    assert digest["Subject"].startswith("crm2: 2 notification(s) of 2026-11-10")
    rows = await n.rows(Delivery)
    assert {d.status for d in rows} == {"delivered"} and {d.attempts for d in rows} == {2}


async def test_a_delivered_digest_publishes_delivery_succeeded_for_each_delivery(
    email_digest: tuple[Notifications, User],
) -> None:
    """A digest's deliveries tell subscribers they succeeded, as a single delivery does."""
    from crm2_core.testing import EventRecord

    n, _owner = email_digest
    assert await send_digests(n.context, now=DIGEST_DUE) == 1
    rows = await n.rows(Delivery)
    succeeded = [
        e for e in await n.rows(EventRecord) if e.type == "notifications.delivery.succeeded"
    ]
    assert sorted(str(e.subject) for e in succeeded) == sorted(str(d.id) for d in rows)


@contextlib.asynccontextmanager
async def attempt_rows_refused(n: Notifications) -> AsyncIterator[None]:
    """While inside, a trigger makes the database refuse every delivery attempt row."""
    from sqlalchemy import text

    table = "notifications_delivery_attempt"
    async with n.context.session_factory() as session:
        sqlite = session.bind.dialect.name == "sqlite"
        if sqlite:
            create = [
                f"CREATE TRIGGER refuse_attempts BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'attempts refused'); END"
            ]
            drop = ["DROP TRIGGER IF EXISTS refuse_attempts"]
        else:
            create = [
                "CREATE OR REPLACE FUNCTION refuse_attempts() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'attempts refused'; END $$",
                f"CREATE TRIGGER refuse_attempts BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_attempts()",
            ]
            drop = [
                f"DROP TRIGGER IF EXISTS refuse_attempts ON {table}",
                "DROP FUNCTION IF EXISTS refuse_attempts()",
            ]
        for statement in create:
            await session.execute(text(statement))
        await session.commit()
    try:
        yield
    finally:
        async with n.context.session_factory() as session:
            for statement in drop:
                await session.execute(text(statement))
            await session.commit()


async def test_a_digest_whose_outcome_the_database_refuses_gives_the_day_back(
    email_digest: tuple[Notifications, User], smtp_server: SmtpServer
) -> None:
    """The SMTP server says "later" and the database refuses the attempt's row: the
    digest is retried on a later run of the same day, not a day late."""
    n, _owner = email_digest
    smtp_server.mailbox.refuse = "451 4.3.0 try again later"
    async with attempt_rows_refused(n):
        with pytest.raises(RuntimeError, match="1 digest"):
            await send_digests(n.context, now=DIGEST_DUE)
    rows = await n.rows(Delivery)
    assert {(d.status, d.attempts) for d in rows} == {("digest", 0)}
    (settings,) = await n.rows(UserSettings)
    assert settings.last_digest_on is None  # the day is due again

    smtp_server.mailbox.refuse = None
    later = DIGEST_DUE + timedelta(minutes=5)  # the job's next run
    assert await send_digests(n.context, now=later) == 1
    (digest,) = smtp_server.mailbox.messages
    assert digest["Subject"].startswith("crm2: 2 notification(s) of 2026-11-10")
    assert {d.status for d in await n.rows(Delivery)} == {"delivered"}


async def test_a_sent_digest_whose_outcome_the_database_refuses_is_not_sent_again(
    email_digest: tuple[Notifications, User], smtp_server: SmtpServer
) -> None:
    n, _owner = email_digest
    async with attempt_rows_refused(n):
        with pytest.raises(RuntimeError, match="1 digest"):
            await send_digests(n.context, now=DIGEST_DUE)
    assert len(smtp_server.mailbox.messages) == 1
    assert {d.status for d in await n.rows(Delivery)} == {"delivered"}  # it went out

    for later in (DIGEST_DUE + timedelta(minutes=5), DIGEST_DUE + timedelta(days=1)):
        assert await send_digests(n.context, now=later) == 0
    assert len(smtp_server.mailbox.messages) == 1


async def test_two_preference_changes_with_the_same_etag_do_not_both_win(
    notifications: Notifications,
) -> None:
    """If-Match is checked in the UPDATE itself: of two PATCHes racing with the same ETag
    one is applied and the other refused (412 / 409), never silently overwritten."""
    import asyncio

    (user,) = await notifications.users("agent")
    assert (await _prefs(notifications, user, timezone="UTC")).status_code == 200  # stored
    current = await notifications.client.get(f"{API}/preferences", headers=user.headers)
    headers = {**user.headers, "If-Match": current.headers["ETag"]}

    async def patch(zone: str) -> Any:
        body = {"timezone": zone}
        return await notifications.client.patch(f"{API}/preferences", json=body, headers=headers)

    answers = await asyncio.gather(*(patch(z) for z in ("Europe/Berlin", "Asia/Tokyo")))
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and codes[1] in (409, 412), [a.text for a in answers]
    (won,) = [a for a in answers if a.status_code == 200]
    final = await notifications.client.get(f"{API}/preferences", headers=user.headers)
    assert final.json()["timezone"] == won.json()["timezone"]
    assert final.json()["version"] == current.json()["version"] + 1


async def test_a_digest_for_a_channel_not_configured_waits_like_a_single_delivery(
    crm2_app_factory: Any,
) -> None:
    """E-mail is off (no SMTP host): a single delivery waits for it, no attempt counted.
    A digest tried to send anyway (smtplib took the empty host for this machine) and,
    refused, counted attempts until dead-lettered. It waits as well — until the
    retention, past which it is dead-lettered like a single one."""
    import ping_plugin

    from crm2_core.api import utcnow

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": {"digest_hour": 0}},
        scheduler_enabled=False,
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    admin, owner = await n.users("admin", "agent")
    await n.rule(admin, channels=["email"], recipients={"data_fields": ["owner_id"]})
    digest_mode = [{"channel": "email", "event_type": "*", "mode": "digest"}]
    assert (await _prefs(n, owner, rules=digest_mode)).status_code == 200
    await n.ping(admin, title="one", owner_id=owner.id)
    await n.settle()
    start = utcnow()
    for days in (1, 2):
        assert await send_digests(n.context, now=start + timedelta(days=days)) == 0
        (row,) = await n.rows(Delivery)
        assert (row.status, row.attempts) == ("digest", 0), (row.status, row.last_error)
    assert await send_digests(n.context, now=start + timedelta(days=91)) == 0
    (row,) = await n.rows(Delivery)
    assert row.status == "dead" and "longer than the retention" in (row.last_error or "")


async def test_a_sent_digest_whose_delivered_update_fails_is_never_sent_again(
    email_digest: tuple[Notifications, User], smtp_server: SmtpServer
) -> None:
    """The digest went out, then neither its outcome nor the bare "delivered" could be
    written: it was taken out of ``digest`` before it was sent (a transaction of its own),
    so neither a later run that day, nor the next day's digest, nor the deliveries job
    sends it again; once its claim is stale it is dead-lettered as an unknown outcome."""
    from crm2_notifications.service.delivery import UNKNOWN

    n, _owner = email_digest
    async with delivered_updates_refused(n):
        with pytest.raises(RuntimeError, match="1 digest"):
            await send_digests(n.context, now=DIGEST_DUE)
    assert len(smtp_server.mailbox.messages) == 1

    for later in (
        DIGEST_DUE + timedelta(minutes=5),
        DIGEST_DUE + timedelta(days=1),
        DIGEST_DUE + timedelta(days=2),
    ):
        assert await send_digests(n.context, now=later) == 0
        await send_due(n.context, now=later)
    assert len(smtp_server.mailbox.messages) == 1
    assert {(d.status, d.last_error) for d in await n.rows(Delivery)} == {("dead", UNKNOWN)}
