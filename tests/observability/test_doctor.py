"""``crm2 doctor``: findings on a healthy setup and on broken ones, table and JSON."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pika
import probe_plugin
import pytest
from click.testing import CliRunner
from sqlalchemy import text

import crm2_core.cli.doctor  # noqa: F401  (registers the command)
from crm2_core.cli.main import cli
from crm2_core.db import utcnow
from crm2_core.events.models import DeadLetter, EventRecord
from crm2_core.http.app import build_app_context
from crm2_core.observability.doctor import Finding, diagnose, exit_code
from crm2_core.testing.app import TEST_JWT_SECRET

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


async def _diagnose(crm2_settings, **overrides) -> list[Finding]:
    """Doctor on its own context (no relay running), as the command builds it."""
    settings = crm2_settings.model_copy(update=overrides)
    context = build_app_context(
        settings,
        extra_plugins=(probe_plugin,),
        plugin_settings={"auth": {"jwt_secret": TEST_JWT_SECRET}},
    )
    try:
        return await diagnose(context)
    finally:
        await context.aclose()


@pytest.fixture
async def migrated(crm2_app_factory):
    """The test database, migrated with the probe plugin (then left to doctor)."""
    app = await crm2_app_factory(extra_plugins=(probe_plugin,))
    return app


async def test_a_healthy_setup_has_no_failure(crm2_settings, migrated) -> None:
    findings = await _diagnose(crm2_settings, plugins="probe")

    assert exit_code(findings) == 0, findings
    checks = by_check(findings)
    for name in ("database", "migrations: core", "migrations: auth", "migrations: probe"):
        assert checks[name].status == "ok", checks[name]
    assert checks["outbox"].status == "ok"
    assert checks["dead letters"].detail == "none waiting"
    assert checks["clock skew"].status == "ok"
    assert checks["secrets"].status == "ok"


async def test_old_unrelayed_events_and_dead_letters_are_warnings(crm2_settings, migrated) -> None:
    async with migrated.context.session_factory() as session:
        session.add(
            DeadLetter(
                handler="probe.record",
                event_id=uuid.uuid4(),
                position=1,
                attempts=3,
                error="boom",
                traceback="",
            )
        )
        await session.commit()
    await migrated.aclose()  # its relay would forward the event below
    async with migrated.context.session_factory() as session:
        session.add(
            EventRecord(
                type="probe.item.created",
                actor_kind="system",
                subject="s1",
                data={"n": 1},
                occurred_at=utcnow() - timedelta(minutes=5),
            )
        )
        await session.commit()

    findings = await _diagnose(crm2_settings, plugins="probe")

    checks = by_check(findings)
    assert checks["outbox"].status == "warn"
    assert checks["outbox"].detail.startswith("1 unrelayed, oldest 3")
    assert checks["dead letters"].status == "warn"
    assert "probe.record: 1" in checks["dead letters"].detail
    assert exit_code(findings) == 0  # warnings alone do not fail


async def test_unreachable_redis_and_broker_fail(crm2_settings, migrated) -> None:
    findings = await _diagnose(
        crm2_settings,
        plugins="probe",
        redis_url="redis://127.0.0.1:1/0",
        broker_url="amqp://guest:guest@127.0.0.1:1/%2F",
    )

    checks = by_check(findings)
    assert checks["redis"].status == "fail"
    assert checks["broker"].status == "fail"
    assert exit_code(findings) == 1


async def test_queue_backlog_is_read_from_rabbitmq(crm2_settings, migrated) -> None:
    prefix = f"doctor{uuid.uuid4().hex[:8]}"
    queue = f"{prefix}.probe"
    missing = by_check(
        await _diagnose(
            crm2_settings, plugins="probe", broker_url=RABBITMQ, broker_queue_prefix=prefix
        )
    )
    assert missing[f"queue {queue}"].status == "warn"
    assert "not declared" in missing[f"queue {queue}"].detail

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
    channel = connection.channel()
    try:
        channel.queue_declare(queue, durable=False, auto_delete=False)
        for n in range(3):
            channel.basic_publish("", queue, f"m{n}".encode())
        channel.queue_declare(f"{queue}.XQ", durable=False)
        channel.basic_publish("", f"{queue}.XQ", b"dead")
        found = by_check(
            await _diagnose(
                crm2_settings, plugins="probe", broker_url=RABBITMQ, broker_queue_prefix=prefix
            )
        )
    finally:
        channel.queue_delete(queue)
        channel.queue_delete(f"{queue}.XQ")
        connection.close()

    assert found[f"queue {queue}"].detail == "3 waiting, 1 in the broker's XQ"
    assert found[f"queue {queue}"].status == "warn"  # something sits in the dead-letter queue


async def test_a_version_table_of_an_unknown_plugin_is_reported(crm2_settings, migrated) -> None:
    async with migrated.context.engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE alembic_version_billing (version_num VARCHAR(32) NOT NULL)")
        )
    try:
        findings = await _diagnose(crm2_settings, plugins="probe")
    finally:
        async with migrated.context.engine.begin() as conn:
            await conn.execute(text("DROP TABLE alembic_version_billing"))

    # billing: a plugin no one installed (payments, deals… are installed: disabled here)
    billing = [f for f in findings if f.check == "plugin set" and "billing" in f.detail]
    assert [f.status for f in billing] == ["warn"]
    assert "billing has tables here but is not installed" in billing[0].detail


async def test_a_demo_secret_fails_outside_development(crm2_settings, migrated) -> None:
    from crm2_core.auth.config import EXAMPLE_JWT_SECRET

    context_settings = crm2_settings.model_copy(update={"plugins": "probe", "env": "development"})
    context = build_app_context(
        context_settings,
        extra_plugins=(probe_plugin,),
        plugin_settings={"auth": {"jwt_secret": EXAMPLE_JWT_SECRET}},
    )
    try:
        findings = await diagnose(context)
        context.settings = context.settings.model_copy(update={"env": "production"})
        production = await diagnose(context)
    finally:
        await context.aclose()

    assert by_check(findings)["secrets"].status == "warn"
    assert "CRM2_AUTH_JWT_SECRET" in by_check(findings)["secrets"].detail
    assert by_check(production)["secrets"].status == "fail"


def test_the_command_fails_on_an_unmigrated_database_and_passes_after_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crm2_core.cli.commands  # noqa: F401

    monkeypatch.chdir(tmp_path)
    runner = CliRunner(
        env={
            "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'doctor.db'}",
            "CRM2_PLUGINS": "",
            "CRM2_ENV": "development",
            "COLUMNS": "200",
        }
    )
    broken = runner.invoke(cli, ["doctor", "--json"])
    assert broken.exit_code == 1, broken.output
    report = json.loads(broken.output[broken.output.index("{") :])
    assert report["ok"] is False
    statuses = {c["check"]: c["status"] for c in report["checks"]}
    assert statuses["migrations: core"] == "fail"
    assert statuses["events"] == "fail"  # skipped: nothing to read without the core's tables

    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    healthy = runner.invoke(cli, ["doctor"])
    assert healthy.exit_code == 0, healthy.output
    assert "migrations: core" in healthy.output
    statuses = [row.split("│")[2].strip() for row in healthy.output.splitlines() if "│" in row]
    assert "fail" not in statuses and "ok" in statuses, healthy.output
