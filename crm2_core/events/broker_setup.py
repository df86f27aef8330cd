"""``crm2 broker setup``: RabbitMQ's vhost, permissions, queues and policies from the settings.

Workers declare their queues themselves on start, so this is not needed to run
crm2; it is for operators who create the broker's topology ahead of a rollout
(a vhost per deployment, queues that exist before the first event, bounded
dead-letter queues) and for a broker whose application user may not configure.

Queues are declared exactly as dramatiq declares them (``<queue>``, the delay
queue ``<queue>.DQ`` and the dead-letter queue ``<queue>.XQ``, messages
dead-lettered through the default exchange): a queue declared with other
arguments would make every worker fail with PRECONDITION_FAILED. Limits
therefore go into policies, which apply to existing queues and to the queues of
plugins enabled later, by name pattern.

Every step first reads what is there and changes only what differs, so running
it twice changes nothing the second time; each step is reported.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import pika
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.common import dq_name, xq_name
from pika.exceptions import ChannelClosedByBroker

from crm2_core.errors import ConfigurationError
from crm2_core.settings import Settings

Action = Literal["created", "updated", "removed", "unchanged", "failed"]
ALL = ".*"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class PolicySpec:
    name: str
    pattern: str
    definition: dict[str, Any]
    priority: int = 0
    apply_to: str = "queues"


@dataclass(frozen=True)
class Topology:
    vhost: str
    user: str
    queues: list[QueueSpec]
    policies: list[PolicySpec]
    # policies named with this prefix that are not wanted any more are removed
    policy_prefix: str


@dataclass(frozen=True)
class Change:
    action: Action
    kind: Literal["vhost", "permissions", "policy", "queue"]
    name: str
    detail: str = ""


@dataclass
class Report:
    changes: list[Change] = field(default_factory=list)

    def add(self, action: Action, kind: Any, name: str, detail: str = "") -> None:
        self.changes.append(Change(action, kind, name, detail))

    @property
    def failed(self) -> bool:
        return any(change.action == "failed" for change in self.changes)

    def as_json(self) -> list[dict[str, str]]:
        return [asdict(change) for change in self.changes]


def queue_specs(queue: str) -> list[QueueSpec]:
    """The three queues dramatiq's RabbitMQ broker declares for one actor queue."""
    dead_letters = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": xq_name(queue)}
    return [
        QueueSpec(queue, dead_letters),
        QueueSpec(dq_name(queue), dead_letters),
        QueueSpec(xq_name(queue), {"x-message-ttl": DEAD_MESSAGE_TTL}),
    ]


def desired_topology(settings: Settings, plugins_with_handlers: Sequence[str]) -> Topology:
    url = settings.broker_url
    if not url.startswith(("amqp://", "amqps://")):
        raise ConfigurationError(
            f"crm2 broker setup is for RabbitMQ: CRM2_BROKER_URL is {url.split('://')[0]}://"
        )
    params = pika.URLParameters(url)
    prefix = settings.broker_queue_prefix
    queues = [
        spec for plugin in plugins_with_handlers for spec in queue_specs(f"{prefix}.{plugin}")
    ]
    escaped = re.escape(prefix)
    policies = [
        PolicySpec(
            f"{prefix}-dead-letters",
            rf"^{escaped}\.[^.]+\.XQ$",
            {"max-length": settings.broker_dead_letter_max_length, "overflow": "drop-head"},
            priority=10,
        )
    ]
    if settings.broker_queue_max_length:
        policies.append(
            PolicySpec(
                f"{prefix}-queues",
                rf"^{escaped}\.[^.]+$",
                {"max-length": settings.broker_queue_max_length, "overflow": "reject-publish"},
            )
        )
    return Topology(
        vhost=params.virtual_host,
        user=params.credentials.username,
        queues=queues,
        policies=policies,
        policy_prefix=f"{prefix}-",
    )


class BrokerAdmin(Protocol):
    """What setup needs beyond AMQP: vhosts, permissions and policies."""

    def vhosts(self) -> set[str]: ...
    def add_vhost(self, vhost: str) -> None: ...
    def permissions(self, vhost: str, user: str) -> tuple[str, str, str] | None: ...
    def set_permissions(self, vhost: str, user: str) -> None: ...
    def policies(self, vhost: str) -> dict[str, PolicySpec]: ...
    def set_policy(self, vhost: str, policy: PolicySpec) -> None: ...
    def clear_policy(self, vhost: str, name: str) -> None: ...


class BrokerAdminError(RuntimeError):
    pass


class ManagementApi:
    """RabbitMQ's management HTTP API (``rabbitmq_management`` plugin)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigurationError(
                "CRM2_BROKER_MANAGEMENT_URL must be http(s)://user:password@host:15672"
            )
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        user = urllib.parse.unquote(parts.username or "guest")
        password = urllib.parse.unquote(parts.password or "guest")
        self.authorization = "Basic " + b64encode(f"{user}:{password}".encode()).decode()
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.base + "/api/" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": self.authorization, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method == "GET":
                return None
            raise BrokerAdminError(
                f"management API {method} /api/{path}: {exc.code} {exc.reason}"
            ) from None
        except OSError as exc:
            raise BrokerAdminError(f"management API at {self.base} unreachable: {exc}") from None
        return json.loads(payload) if payload else None

    @staticmethod
    def _q(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def vhosts(self) -> set[str]:
        return {entry["name"] for entry in self._call("GET", "vhosts") or []}

    def add_vhost(self, vhost: str) -> None:
        self._call("PUT", f"vhosts/{self._q(vhost)}", {})

    def permissions(self, vhost: str, user: str) -> tuple[str, str, str] | None:
        found = self._call("GET", f"permissions/{self._q(vhost)}/{self._q(user)}")
        return None if found is None else (found["configure"], found["write"], found["read"])

    def set_permissions(self, vhost: str, user: str) -> None:
        body = {"configure": ALL, "write": ALL, "read": ALL}
        self._call("PUT", f"permissions/{self._q(vhost)}/{self._q(user)}", body)

    def policies(self, vhost: str) -> dict[str, PolicySpec]:
        found = self._call("GET", f"policies/{self._q(vhost)}") or []
        return {entry["name"]: _policy(entry) for entry in found}

    def set_policy(self, vhost: str, policy: PolicySpec) -> None:
        body = {
            "pattern": policy.pattern,
            "definition": policy.definition,
            "priority": policy.priority,
            "apply-to": policy.apply_to,
        }
        self._call("PUT", f"policies/{self._q(vhost)}/{self._q(policy.name)}", body)

    def clear_policy(self, vhost: str, name: str) -> None:
        self._call("DELETE", f"policies/{self._q(vhost)}/{self._q(name)}")


class Rabbitmqctl:
    """``rabbitmqctl`` on the broker's machine (it needs the node's Erlang cookie)."""

    def __init__(self, executable: str = "rabbitmqctl", timeout: float = 60.0) -> None:
        found = shutil.which(executable)
        if found is None:
            raise ConfigurationError(
                "rabbitmqctl not found: run crm2 broker setup on the broker's machine, or set"
                " CRM2_BROKER_MANAGEMENT_URL to the RabbitMQ management API"
            )
        self.executable = found
        self.timeout = timeout

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            [self.executable, "-q", *args],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if result.returncode != 0:
            reason = (result.stderr or result.stdout).strip().splitlines()
            raise BrokerAdminError(f"rabbitmqctl {args[0]}: {reason[-1] if reason else 'failed'}")
        return result.stdout

    def _json(self, *args: str) -> list[dict[str, Any]]:
        out = self._run(*args, "--formatter", "json").strip()
        return list(json.loads(out)) if out else []

    def vhosts(self) -> set[str]:
        return {entry["name"] for entry in self._json("list_vhosts")}

    def add_vhost(self, vhost: str) -> None:
        self._run("add_vhost", vhost)

    def permissions(self, vhost: str, user: str) -> tuple[str, str, str] | None:
        for entry in self._json("list_permissions", "-p", vhost):
            if entry["user"] == user:
                return entry["configure"], entry["write"], entry["read"]
        return None

    def set_permissions(self, vhost: str, user: str) -> None:
        self._run("set_permissions", "-p", vhost, user, ALL, ALL, ALL)

    def policies(self, vhost: str) -> dict[str, PolicySpec]:
        return {entry["name"]: _policy(entry) for entry in self._json("list_policies", "-p", vhost)}

    def set_policy(self, vhost: str, policy: PolicySpec) -> None:
        self._run(
            "set_policy",
            "-p",
            vhost,
            "--priority",
            str(policy.priority),
            "--apply-to",
            policy.apply_to,
            policy.name,
            policy.pattern,
            json.dumps(policy.definition),
        )

    def clear_policy(self, vhost: str, name: str) -> None:
        self._run("clear_policy", "-p", vhost, name)


def _policy(entry: dict[str, Any]) -> PolicySpec:
    definition = entry["definition"]
    if isinstance(definition, str):  # rabbitmqctl prints it as a JSON string
        definition = json.loads(definition)
    return PolicySpec(
        name=entry["name"],
        pattern=entry["pattern"],
        definition=definition,
        priority=int(entry.get("priority", 0)),
        apply_to=entry.get("apply-to", "all"),
    )


def broker_admin(settings: Settings) -> BrokerAdmin:
    if settings.broker_management_url:
        return ManagementApi(settings.broker_management_url)
    return Rabbitmqctl()


def setup_broker(
    settings: Settings,
    topology: Topology,
    admin: BrokerAdmin,
    *,
    apply: bool = True,
) -> Report:
    """Bring the broker to ``topology``; with ``apply=False`` only say what would change."""
    report = Report()
    try:
        vhost_existed = topology.vhost in admin.vhosts()
        _vhost_and_permissions(topology, admin, report, apply, vhost_existed)
        _policies(topology, admin, report, apply, vhost_existed)
    except BrokerAdminError as exc:
        report.add("failed", "vhost", topology.vhost, str(exc))
        return report
    if not apply and not vhost_existed:
        for spec in topology.queues:  # nothing to connect to yet
            report.add("created", "queue", spec.name)
        return report
    _queues(settings.broker_url, topology, report, apply)
    return report


def _vhost_and_permissions(
    topology: Topology, admin: BrokerAdmin, report: Report, apply: bool, existed: bool
) -> None:
    vhost, user = topology.vhost, topology.user
    if existed:
        report.add("unchanged", "vhost", vhost)
    else:
        if apply:
            admin.add_vhost(vhost)
        report.add("created", "vhost", vhost)
    current = admin.permissions(vhost, user) if existed else None
    if current == (ALL, ALL, ALL):
        report.add("unchanged", "permissions", f"{user}@{vhost}", "configure, write, read: .*")
        return
    if apply:
        admin.set_permissions(vhost, user)
    action: Action = "created" if current is None else "updated"
    report.add(action, "permissions", f"{user}@{vhost}", "configure, write, read: .*")


def _policies(
    topology: Topology, admin: BrokerAdmin, report: Report, apply: bool, existed: bool
) -> None:
    vhost = topology.vhost
    current = admin.policies(vhost) if existed else {}
    wanted = {policy.name: policy for policy in topology.policies}
    for name, policy in wanted.items():
        detail = f"{policy.pattern} {json.dumps(policy.definition, sort_keys=True)}"
        if current.get(name) == policy:
            report.add("unchanged", "policy", name, detail)
            continue
        if apply:
            admin.set_policy(vhost, policy)
        report.add("created" if name not in current else "updated", "policy", name, detail)
    for name in sorted(current):
        if name.startswith(topology.policy_prefix) and name not in wanted:
            if apply:
                admin.clear_policy(vhost, name)
            report.add("removed", "policy", name, "no longer wanted by the settings")


def _queues(url: str, topology: Topology, report: Report, apply: bool) -> None:
    if not topology.queues:
        return
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 10
    try:
        connection = pika.BlockingConnection(params)
    except Exception as exc:  # pika raises a family of connection errors
        for spec in topology.queues:
            report.add("failed", "queue", spec.name, f"broker unreachable: {exc!r}")
        return
    try:
        for spec in topology.queues:
            report.changes.append(_queue(connection, spec, apply))
    finally:
        connection.close()


def _queue(connection: pika.BlockingConnection, spec: QueueSpec, apply: bool) -> Change:
    channel = connection.channel()
    try:
        channel.queue_declare(spec.name, passive=True)
        exists = True
    except ChannelClosedByBroker:  # 404: the channel is closed, open another
        exists = False
        channel = connection.channel()
    try:
        if exists or apply:
            # Declaring an existing queue with other arguments fails: that tells us it differs.
            channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    except ChannelClosedByBroker as exc:
        return Change(
            "failed",
            "queue",
            spec.name,
            f"exists with other arguments ({exc.reply_text}): drain and delete it, then run again",
        )
    finally:
        if channel.is_open:
            channel.close()
    return Change("unchanged" if exists else "created", "queue", spec.name)
