"""The targets this plugin ships, chosen from the deployment's own settings."""

from __future__ import annotations

import logging
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.targets.consul import ConsulTarget
from crm2_backup.targets.postgres import PostgresTarget
from crm2_backup.targets.rabbitmq import RabbitmqTarget, vhost_of
from crm2_backup.targets.sqlite import SqliteTarget

log = logging.getLogger("crm2.backup")


def management_url(core: Any, ours: BackupSettings) -> str:
    """The core's ``CRM2_BROKER_MANAGEMENT_URL``; the old backup-only name while it is unset."""
    if core.broker_management_url:
        return str(core.broker_management_url)
    if ours.rabbitmq_management_url:
        log.warning(
            "CRM2_BACKUP_RABBITMQ_MANAGEMENT_URL is deprecated: set CRM2_BROKER_MANAGEMENT_URL"
        )
    return ours.rabbitmq_management_url


def builtin_targets(context: Any) -> list[Any]:
    """crm2's database always; Redis, RabbitMQ and Consul when this deployment uses them."""
    core = context.settings
    ours: BackupSettings = context.plugin_settings("backup")
    timeout = float(ours.command_timeout_seconds)
    targets: list[Any] = []
    if str(core.database_url).startswith("sqlite"):
        targets.append(SqliteTarget(core.database_url, checksums=ours.table_checksums))
    else:
        targets.append(
            PostgresTarget(
                core.database_url,
                pg_dump=ours.pg_dump,
                pg_restore=ours.pg_restore,
                timeout=timeout,
                checksums=ours.table_checksums,
            )
        )
    if core.redis_url:
        from crm2_backup.targets.redis import RedisTarget  # redis only when used (start-up)

        targets.append(
            RedisTarget(
                core.redis_url,
                core.redis_prefix,
                mode=ours.redis_mode,
                redis_server=ours.redis_server,
                timeout=timeout,
            )
        )
    broker = str(core.broker_url)
    management = management_url(core, ours)
    if broker.startswith(("amqp://", "amqps://")) or management:
        vhost = ours.rabbitmq_vhost or (vhost_of(broker) if broker.startswith("amqp") else "/")
        targets.append(
            RabbitmqTarget(
                vhost,
                management_url=management,
                rabbitmqctl=ours.rabbitmqctl,
                timeout=timeout,
            )
        )
    if ours.consul_url:
        token = ours.consul_token.get_secret_value() if ours.consul_token else None
        other = ours.consul_restore_token
        targets.append(
            ConsulTarget(
                ours.consul_url,
                token,
                timeout,
                restore_token=other.get_secret_value() if other else None,
            )
        )
    return targets
