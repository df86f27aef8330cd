"""``crm2 doctor``: is this deployment healthy? One finding per check, each ok, warn or fail.

Everything comes from what is declared: the enabled plugins (their migrations,
handlers and so queues, health checks, settings models), so a new plugin is
checked without a line here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from sqlalchemy import func, inspect, select, text
from sqlmodel import col

from crm2_core.db import utcnow

Status = Literal["ok", "warn", "fail"]
CHECK_TIMEOUT_SECONDS = 5.0
OUTBOX_LAG_WARN_SECONDS = 60.0
CLOCK_SKEW_WARN_SECONDS = 1.0
CLOCK_SKEW_FAIL_SECONDS = 30.0
QUEUE_BACKLOG_WARN = 10_000


@dataclass
class Finding:
    check: str
    status: Status
    detail: str
    ms: float = 0.0


Check = Callable[[Any], Awaitable[list[Finding]]]


async def _timed(name: str, check: Check, context: Any) -> list[Finding]:
    started = time.perf_counter()
    try:
        findings = await asyncio.wait_for(check(context), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        findings = [Finding(name, "fail", f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s")]
    except Exception as exc:
        findings = [Finding(name, "fail", f"{type(exc).__name__}: {exc}"[:300])]
    ms = round((time.perf_counter() - started) * 1000, 1)
    for finding in findings:
        finding.ms = ms
    return findings


# -- the checks ---------------------------------------------------------------------------


async def check_database(context: Any) -> list[Finding]:
    async with context.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return [Finding("database", "ok", context.engine.url.render_as_string(hide_password=True))]


async def check_migrations(context: Any) -> list[Finding]:
    from crm2_core import migrate

    findings = []
    for state in await migrate.states(context.engine, context.plugins):
        if state.up_to_date:
            findings.append(Finding(f"migrations: {state.plugin}", "ok", "at head"))
        else:
            findings.append(
                Finding(
                    f"migrations: {state.plugin}",
                    "fail",
                    f"at {','.join(state.current) or 'nothing'}, head {','.join(state.heads)}: "
                    "run `crm2 migrate`",
                )
            )
    return findings


async def check_plugin_set(context: Any) -> list[Finding]:
    """Version tables in the database against the plugins enabled here."""
    from crm2_core import migrate

    async with context.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    marker = "alembic_version_"
    recorded = {t.removeprefix(marker) for t in tables if t.startswith(marker)}
    with_migrations = {s.plugin for s in migrate.migration_sources(context.plugins)}
    installed = {s.name for s in context.plugins.statuses()}
    findings = []
    for plugin in sorted(recorded - with_migrations):
        if plugin in installed:
            detail = f"{plugin} has tables here but is disabled (its data is kept, unused)"
        else:
            detail = f"{plugin} has tables here but is not installed on this machine"
        findings.append(Finding("plugin set", "warn", detail))
    if not findings:
        detail = (
            f"{len(with_migrations)} plugins match the database"
            if recorded
            else "no plugin has migrated this database yet"
        )
        findings.append(Finding("plugin set", "ok", detail))
    return findings


async def check_redis(context: Any) -> list[Finding]:
    if context.redis is None:
        return [Finding("redis", "ok", "not configured (in-process throttling and fan-out)")]
    await context.redis.ping()
    return [Finding("redis", "ok", "PING answered")]


def make_url_safe(url: str) -> str:
    """The broker URL without its password."""
    from sqlalchemy.engine import make_url

    scheme, _, rest = url.partition("://")
    try:
        return scheme + "://" + make_url(f"x://{rest}").render_as_string()[4:]
    except Exception:
        return scheme + "://…"


def _queues(context: Any) -> list[str]:
    bus = context.events
    prefix = context.settings.broker_queue_prefix
    return [f"{prefix}.{plugin}" for plugin in bus.handlers.plugins]


def _rabbitmq_counts(url: str, queues: list[str]) -> dict[str, tuple[int, int] | None]:
    import pika
    from pika.exceptions import ChannelClosedByBroker

    # pika logs a traceback of its own for a refused connection; the finding says it in one line
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    params = pika.URLParameters(url)
    params.socket_timeout = 3
    params.blocked_connection_timeout = 3
    params.connection_attempts = 1
    connection = pika.BlockingConnection(params)
    counts: dict[str, tuple[int, int] | None] = {}
    try:
        for queue in queues:
            found = []
            for name in (queue, f"{queue}.XQ"):
                channel = connection.channel()
                try:
                    ok = channel.queue_declare(name, passive=True)
                    found.append(ok.method.message_count)
                    channel.close()
                except ChannelClosedByBroker:  # 404: not declared yet
                    found.append(-1)
            counts[queue] = None if found[0] < 0 else (found[0], max(found[1], 0))
    finally:
        connection.close()
    return counts


async def _redis_broker_counts(url: str, prefix: str, queues: list[str]) -> dict[str, Any]:
    from redis.asyncio import Redis

    namespace = f"{prefix}-dramatiq"
    client = Redis.from_url(url)
    try:
        counts: dict[str, tuple[int, int] | None] = {}
        for queue in queues:
            waiting = await client.hlen(f"{namespace}:{queue}.msgs")
            dead = await client.hlen(f"{namespace}:{queue}.XQ.msgs")
            counts[queue] = (int(waiting), int(dead))
        return counts
    finally:
        await client.aclose()


async def check_broker(context: Any) -> list[Finding]:
    url = context.settings.broker_url
    if url.startswith("memory://"):
        return [Finding("broker", "ok", "in-process (memory://): handlers run in crm2 serve")]
    queues = _queues(context)
    try:
        if url.startswith(("amqp://", "amqps://")):
            counts = await asyncio.to_thread(_rabbitmq_counts, url, queues)
        else:
            counts = await _redis_broker_counts(url, context.settings.broker_queue_prefix, queues)
    except Exception as exc:
        where = make_url_safe(url)
        reason = str(exc) or "no connection"
        return [Finding("broker", "fail", f"{where}: {type(exc).__name__}: {reason}"[:300])]
    findings = [Finding("broker", "ok", f"{url.split('://')[0]} reachable")]
    for queue, found in counts.items():
        if found is None:
            findings.append(
                Finding(
                    f"queue {queue}",
                    "warn",
                    "not declared yet: run `crm2 broker setup`, or start a crm2 worker"
                    " (it declares its queues)",
                )
            )
            continue
        waiting, dead = found
        status: Status = "warn" if waiting > QUEUE_BACKLOG_WARN or dead else "ok"
        findings.append(
            Finding(f"queue {queue}", status, f"{waiting} waiting, {dead} in the broker's XQ")
        )
    return findings


async def check_events(context: Any) -> list[Finding]:
    """Outbox backlog and lag, and dead letters waiting for a replay."""
    from crm2_core.events.models import DeadLetter, EventRecord

    async with context.session_factory() as session:
        backlog, oldest = (
            await session.execute(
                select(func.count(), func.min(col(EventRecord.occurred_at))).where(
                    col(EventRecord.relayed_at).is_(None)
                )
            )
        ).one()
        letters = (
            await session.execute(
                select(col(DeadLetter.handler), func.count())
                .where(col(DeadLetter.retried_at).is_(None), col(DeadLetter.skipped_at).is_(None))
                .group_by(col(DeadLetter.handler))
            )
        ).all()
    lag = 0.0 if oldest is None else (utcnow() - _aware(oldest)).total_seconds()
    status: Status = "warn" if lag > OUTBOX_LAG_WARN_SECONDS else "ok"
    findings = [
        Finding("outbox", status, f"{backlog} unrelayed, oldest {lag:.1f} s old"),
    ]
    if letters:
        detail = ", ".join(f"{handler}: {count}" for handler, count in letters)
        findings.append(
            Finding("dead letters", "warn", f"{detail} (crm2 events dead-letters --all replays)")
        )
    else:
        findings.append(Finding("dead letters", "ok", "none waiting"))
    return findings


def _aware(moment: Any) -> Any:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def check_clock(context: Any) -> list[Finding]:
    if context.settings.is_sqlite:
        return [Finding("clock skew", "ok", "SQLite: the database is on this machine")]
    before = utcnow()
    async with context.engine.connect() as conn:
        server = (await conn.execute(text("SELECT now()"))).scalar_one()
    after = utcnow()
    local = before + (after - before) / 2
    skew = abs((_aware(server) - local).total_seconds())
    status: Status = (
        "fail"
        if skew > CLOCK_SKEW_FAIL_SECONDS
        else "warn"
        if skew > CLOCK_SKEW_WARN_SECONDS
        else "ok"
    )
    return [Finding("clock skew", status, f"{skew:.3f} s against the database")]


def _example_values(path: Path) -> dict[str, str]:
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.startswith("CRM2_") and not key.startswith("#"):
                values[key] = value
    return values


def _settings_models(context: Any) -> list[tuple[Any, Any]]:
    models = [(context.settings.__class__, context.settings)]
    for plugin in context.plugins.names:
        try:
            values = context.plugins.settings_for(plugin)
        except KeyError:  # a plugin without settings
            continue
        if values is not None:
            models.append((values.__class__, values))
    return models


async def check_secrets(context: Any) -> list[Finding]:
    """Every secret setting (a ``SecretStr`` field of any enabled plugin's settings) against
    env.example's demo value."""
    example = _example_values(Path.cwd() / "env.example") or _example_values(_repo_env_example())
    production = context.settings.env != "development"
    findings = []
    for model, values in _settings_models(context):
        prefix = model.model_config.get("env_prefix", "")
        for name in model.model_fields:
            value = getattr(values, name, None)
            if not isinstance(value, SecretStr):
                continue
            env_name = f"{prefix}{name}".upper()
            demo = example.get(env_name)
            if demo and value.get_secret_value() == demo:
                findings.append(
                    Finding(
                        "secrets",
                        "fail" if production else "warn",
                        f"{env_name} is env.example's demo value: set a secret of your own",
                    )
                )
    if not findings:
        findings.append(Finding("secrets", "ok", "no secret at its env.example value"))
    return findings


def _repo_env_example() -> Path:
    """The wheel's copy (crm2_core/env.example), else the source tree's."""
    packaged = Path(__file__).resolve().parents[1] / "env.example"
    return packaged if packaged.is_file() else Path(__file__).resolve().parents[2] / "env.example"


async def check_plugin_health(context: Any) -> list[Finding]:
    from crm2_core.http.health import _run

    checks = [
        (plugin, check)
        for plugin, check in context.plugins.collect("crm2_health_checks", context=context)
    ]
    reports = await asyncio.gather(*(_run(check) for _plugin, check in checks))
    findings = [Finding("health", "ok", "no plugin declares a health check")] if not checks else []
    for (plugin, check), report in zip(checks, reports, strict=True):
        findings.append(
            Finding(
                f"health: {plugin}.{check.name}",
                "ok" if report["ok"] else "fail",
                report.get("error", "ok"),
            )
        )
    return findings


CHECKS: tuple[tuple[str, Check], ...] = (
    ("database", check_database),
    ("migrations", check_migrations),
    ("plugin set", check_plugin_set),
    ("redis", check_redis),
    ("broker", check_broker),
    ("events", check_events),
    ("clock skew", check_clock),
    ("secrets", check_secrets),
    ("health", check_plugin_health),
)
NEEDS_DATABASE = {"migrations", "plugin set", "events", "clock skew"}
NEEDS_CORE_TABLES = {"events"}


async def diagnose(context: Any) -> list[Finding]:
    """Run every check; those that need the database are skipped when it does not answer."""
    findings: list[Finding] = []
    database = await _timed("database", check_database, context)
    findings += database
    reachable = all(f.status == "ok" for f in database)
    for name, check in CHECKS[1:]:
        if name in NEEDS_DATABASE and not reachable:
            findings.append(Finding(name, "fail", "skipped: the database does not answer"))
            continue
        if name in NEEDS_CORE_TABLES and not _core_migrated(findings):
            findings.append(Finding(name, "fail", "skipped: the core's tables are not migrated"))
            continue
        findings += await _timed(name, check, context)
    return findings


def _core_migrated(findings: list[Finding]) -> bool:
    return any(f.check == "migrations: core" and f.status == "ok" for f in findings)


def exit_code(findings: list[Finding]) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise."""
    return 1 if any(f.status == "fail" for f in findings) else 0


def as_json(findings: list[Finding]) -> dict[str, Any]:
    return {
        "ok": exit_code(findings) == 0,
        "checks": [asdict(f) for f in findings],
    }
