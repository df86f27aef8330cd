"""RabbitMQ definitions (vhosts, queues, exchanges, bindings, policies; never messages).

Exported through the management API (``GET /api/definitions``) when its URL is
set, else with ``rabbitmqctl export_definitions``. A restore names where to:
``broker`` imports the whole file (users included: a rebuilt broker), a vhost
name imports only crm2's vhost's definitions into that vhost and touches
nothing else. Drills import into a scratch vhost of their own and delete it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crm2_backup.errors import BadTargetAddress, TargetFailed
from crm2_backup.targets.base import compare, run_program
from crm2_backup.targets.http import request, split_credentials

SCOPED = ("queues", "exchanges", "bindings", "policies", "parameters")
WHOLE_BROKER = "broker"
IMPORT_POLLS = 5


def vhost_of(broker_url: str) -> str:
    """The vhost of ``amqp://user:pass@host:5672/vhost`` (``/`` when none)."""
    path = urllib.parse.urlsplit(broker_url).path
    return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


def scoped(definitions: Mapping[str, Any], source: str, target: str) -> dict[str, Any]:
    """Only ``source``'s definitions, moved to ``target``; no users, no permissions."""
    out: dict[str, Any] = {"vhosts": [{"name": target}]}
    for section in SCOPED:
        out[section] = [
            {**item, "vhost": target}
            for item in definitions.get(section, [])
            if item.get("vhost") == source
        ]
    return out


def shape(definitions: Mapping[str, Any], vhost: str) -> dict[str, Any]:
    """What a drill compares: the vhost's object names per kind."""
    facts: dict[str, Any] = {}
    for section in ("queues", "exchanges", "policies"):
        names = sorted(i["name"] for i in definitions.get(section, []) if i.get("vhost") == vhost)
        facts[section] = names
    facts["bindings"] = len([b for b in definitions.get("bindings", []) if b.get("vhost") == vhost])
    return facts


class RabbitmqTarget:
    name = "rabbitmq"
    extension = ".json"

    def __init__(
        self,
        vhost: str,
        *,
        management_url: str = "",
        rabbitmqctl: str = "rabbitmqctl",
        timeout: float = 600,
    ) -> None:
        self.vhost = vhost
        self.management_url = management_url
        self.rabbitmqctl = rabbitmqctl
        self.timeout = timeout

    # -- the two ways in --------------------------------------------------------------

    async def _export(self) -> dict[str, Any]:
        if self.management_url:
            base, headers = split_credentials(self.management_url)
            raw = await request(
                "GET", f"{base}/api/definitions", headers=headers, timeout=self.timeout
            )
        else:
            raw = await run_program(
                [self.rabbitmqctl, "export_definitions", "-"], timeout=self.timeout
            )
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise TargetFailed("the broker's definitions are not JSON") from exc
        if not isinstance(data, dict):
            raise TargetFailed("the broker's definitions are not a JSON object")
        return data

    async def _import(self, definitions: Mapping[str, Any]) -> None:
        body = json.dumps(definitions).encode()
        if self.management_url:
            base, headers = split_credentials(self.management_url)
            headers = {**headers, "Content-Type": "application/json"}
            await request(
                "POST", f"{base}/api/definitions", headers=headers, body=body, timeout=self.timeout
            )
        else:
            await run_program(
                # no file argument: standard input (3.10 refuses "-" here)
                [self.rabbitmqctl, "import_definitions", "--format", "json"],
                timeout=self.timeout,
                stdin=body,
            )

    async def _delete_vhost(self, vhost: str) -> None:
        if self.management_url:
            base, headers = split_credentials(self.management_url)
            quoted = urllib.parse.quote(vhost, safe="")
            await request(
                "DELETE", f"{base}/api/vhosts/{quoted}", headers=headers, timeout=self.timeout
            )
        else:
            await run_program([self.rabbitmqctl, "delete_vhost", vhost], timeout=self.timeout)

    # -- the target ---------------------------------------------------------------------

    async def dump(self, path: Path) -> Mapping[str, Any]:
        definitions = await self._export()
        await asyncio.to_thread(path.write_text, json.dumps(definitions), "utf-8")
        return shape(definitions, self.vhost)

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        definitions = json.loads(await asyncio.to_thread(path.read_text, "utf-8"))
        if not isinstance(definitions, dict) or "vhosts" not in definitions:
            raise TargetFailed("not a RabbitMQ definitions file")
        if not to or len(to) > 200:
            raise BadTargetAddress(f"give a vhost name, or {WHOLE_BROKER!r} for the whole broker")
        payload = definitions if to == WHOLE_BROKER else scoped(definitions, self.vhost, to)
        counts = {k: len(payload.get(k, [])) for k in ("vhosts", "users", *SCOPED)}
        if not dry_run:
            await self._import(payload)
        return {"into": to, "dry_run": dry_run, **counts}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        scratch = f"crm2_backup_drill_{uuid.uuid4().hex[:12]}"
        expected = {**facts}
        try:
            await self.restore(path, scratch, False)
            # rabbitmqctl's import finishes asynchronously: look again for a few seconds
            for _attempt in range(IMPORT_POLLS):
                found = shape(await self._export(), scratch)
                if found == expected:
                    break
                await asyncio.sleep(1)
        finally:
            try:
                await self._delete_vhost(scratch)
            except TargetFailed as exc:
                if "does not exist" not in str(exc):
                    raise
        compare(self.name, expected, found)
        return {"queues": len(found["queues"]), "exchanges": len(found["exchanges"])}
