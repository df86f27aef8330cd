"""``crm2 broker setup`` against the machine's RabbitMQ, in a vhost of its own.

The vhost, permissions and policies go through rabbitmqctl (the management
plugin is not enabled on the shared broker, and tests do not reconfigure it);
the management-API client is tested against a small server on 127.0.0.1 that
speaks the calls it makes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pika
import pytest
from click.testing import CliRunner

from crm2_core.cli.main import build_cli
from crm2_core.events import broker_setup
from crm2_core.events.broker_setup import ManagementApi, Rabbitmqctl, desired_topology
from crm2_core.events.dramatiq_broker import make_dramatiq_broker
from crm2_core.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")


def settings_for(vhost: str, prefix: str, **overrides: Any) -> Settings:
    return Settings(
        broker_url=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        broker_queue_prefix=prefix,
        **overrides,
    )


@pytest.fixture
def vhost() -> Iterator[str]:
    name = f"crm2-test-{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, check=False)


def actions(report: broker_setup.Report) -> dict[tuple[str, str], str]:
    return {(change.kind, change.name): change.action for change in report.changes}


def test_setup_creates_the_topology_once_and_then_changes_nothing(vhost: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    settings = settings_for(vhost, prefix, broker_queue_max_length=1000)
    admin = Rabbitmqctl()
    topology = desired_topology(settings, ["probe", "other"])

    dry = broker_setup.setup_broker(settings, topology, admin, apply=False)
    assert vhost not in admin.vhosts(), "a dry run changed the broker"
    assert actions(dry)[("vhost", vhost)] == "created"

    first = broker_setup.setup_broker(settings, topology, admin)
    assert not first.failed, first.changes
    done = actions(first)
    assert done[("vhost", vhost)] == "created"
    assert done[("permissions", f"guest@{vhost}")] == "created"
    assert done[("policy", f"{prefix}-dead-letters")] == "created"
    assert done[("policy", f"{prefix}-queues")] == "created"
    for queue in (f"{prefix}.probe", f"{prefix}.probe.DQ", f"{prefix}.other.XQ"):
        assert done[("queue", queue)] == "created"

    # What the broker now holds: the policies as the settings say, and queues that
    # dramatiq (the workers) declares again without a PRECONDITION_FAILED.
    policies = admin.policies(vhost)
    assert policies[f"{prefix}-queues"].definition == {
        "max-length": 1000,
        "overflow": "reject-publish",
    }
    assert policies[f"{prefix}-dead-letters"].pattern == rf"^{prefix}\.[^.]+\.XQ$"
    dramatiq_broker = make_dramatiq_broker(settings.broker_url, prefix)
    try:
        dramatiq_broker.declare_queue(f"{prefix}.probe", ensure=True)  # type: ignore[call-arg]
    finally:
        dramatiq_broker.close()

    second = broker_setup.setup_broker(settings, topology, admin)
    assert not second.failed
    assert set(actions(second).values()) == {"unchanged"}, second.changes

    # Dropping the queue limit removes its policy; a queue declared by hand with
    # other arguments is reported, not silently accepted.
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    connection.channel().queue_declare(f"{prefix}.odd", durable=True)
    connection.close()
    relaxed = settings_for(vhost, prefix, broker_queue_max_length=0)
    third = broker_setup.setup_broker(relaxed, desired_topology(relaxed, ["probe", "odd"]), admin)
    assert actions(third)[("policy", f"{prefix}-queues")] == "removed"
    assert f"{prefix}-queues" not in admin.policies(vhost)
    odd = [c for c in third.changes if c.name == f"{prefix}.odd"]
    assert odd[0].action == "failed" and "drain and delete it" in odd[0].detail
    assert third.failed


def test_cli_sets_up_the_enabled_plugins_queues(
    vhost: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    prefix = f"c{uuid.uuid4().hex[:8]}"
    env = {
        "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "CRM2_ENV": "development",
        "CRM2_PLUGINS": "tasks",  # a plugin with event handlers, so with a queue
        "CRM2_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "CRM2_BROKER_QUEUE_PREFIX": prefix,
    }
    result = CliRunner(env=env).invoke(build_cli(), ["broker", "setup", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    changes = json.loads(result.output)["changes"]
    queues = {c["name"]: c["action"] for c in changes if c["kind"] == "queue"}
    assert queues == {
        f"{prefix}.tasks": "created",
        f"{prefix}.tasks.DQ": "created",
        f"{prefix}.tasks.XQ": "created",
    }


def test_cli_refuses_a_broker_that_is_not_rabbitmq(tmp_path: Path) -> None:
    env = {
        "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "CRM2_ENV": "development",
        "CRM2_PLUGINS": "",
        "CRM2_BROKER_URL": "memory://",
    }
    result = CliRunner(env=env).invoke(build_cli(), ["broker", "setup"])
    assert result.exit_code == 1
    assert "crm2 broker setup is for RabbitMQ: CRM2_BROKER_URL is memory://" in result.output


class FakeManagementApi(BaseHTTPRequestHandler):
    """The management API calls setup makes, on in-memory state."""

    state: dict[str, Any]

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _parts(self) -> list[str]:
        return [unquote(part) for part in self.path.split("/")[2:]]

    def do_GET(self) -> None:
        if self.headers["Authorization"] != self.state["authorization"]:
            return self._reply(401)
        kind, *rest = self._parts()
        if kind == "vhosts":
            return self._reply(200, [{"name": name} for name in self.state["vhosts"]])
        if kind == "permissions":
            found = self.state["permissions"].get(tuple(rest))
            return self._reply(404 if found is None else 200, found)
        if kind == "policies":
            return self._reply(200, list(self.state["policies"].get(rest[0], {}).values()))
        self._reply(404)

    def do_PUT(self) -> None:
        kind, *rest = self._parts()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.state["calls"].append(("PUT", kind, *rest))
        if kind == "vhosts":
            self.state["vhosts"].add(rest[0])
        elif kind == "permissions":
            self.state["permissions"][tuple(rest)] = body
        elif kind == "policies":
            self.state["policies"].setdefault(rest[0], {})[rest[1]] = {"name": rest[1], **body}
        self._reply(201)

    def do_DELETE(self) -> None:
        kind, vhost, name = self._parts()
        self.state["calls"].append(("DELETE", kind, vhost, name))
        del self.state["policies"][vhost][name]
        self._reply(204)


@pytest.fixture
def management_api() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {
        "vhosts": {"/"},
        "permissions": {},
        "policies": {
            "crm2-prod": {
                "crm2-old": {
                    "name": "crm2-old",
                    "pattern": "x",
                    "definition": {"max-length": 1},
                    "priority": 0,
                    "apply-to": "queues",
                }
            }
        },
        "calls": [],
        "authorization": "Basic YWRtaW46czNjcmV0",  # admin:s3cret
    }
    handler = type("Handler", (FakeManagementApi,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://admin:s3cret@127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_management_api_client_brings_vhost_permissions_and_policies_in_line(
    management_api: tuple[str, dict[str, Any]],
) -> None:
    url, state = management_api
    settings = Settings(
        broker_url="amqp://crm2:pw@rabbit.internal:5672/crm2-prod",
        broker_management_url=url,
    )
    state["vhosts"].add("crm2-prod")
    admin = broker_setup.broker_admin(settings)
    assert isinstance(admin, ManagementApi)
    topology = dataclasses.replace(desired_topology(settings, ["payments"]), queues=[])

    first = broker_setup.setup_broker(settings, topology, admin)
    assert actions(first) == {
        ("vhost", "crm2-prod"): "unchanged",
        ("permissions", "crm2@crm2-prod"): "created",
        ("policy", "crm2-dead-letters"): "created",
        ("policy", "crm2-queues"): "created",
        ("policy", "crm2-old"): "removed",
    }
    assert state["permissions"][("crm2-prod", "crm2")] == {
        "configure": ".*",
        "write": ".*",
        "read": ".*",
    }
    assert set(state["policies"]["crm2-prod"]) == {"crm2-dead-letters", "crm2-queues"}
    assert state["policies"]["crm2-prod"]["crm2-queues"]["definition"] == {
        "max-length": 1_000_000,
        "overflow": "reject-publish",
    }

    state["calls"].clear()
    second = broker_setup.setup_broker(settings, topology, admin)
    assert set(actions(second).values()) == {"unchanged"}
    assert state["calls"] == []


def test_management_api_errors_are_reported_not_raised(
    management_api: tuple[str, dict[str, Any]],
) -> None:
    url, _ = management_api
    wrong_password = url.replace("s3cret", "nope")
    settings = Settings(
        broker_url="amqp://crm2:pw@rabbit.internal:5672/crm2-prod",
        broker_management_url=wrong_password,
    )
    report = broker_setup.setup_broker(
        settings, desired_topology(settings, []), broker_setup.broker_admin(settings)
    )
    assert report.failed
    assert "401" in report.changes[-1].detail
