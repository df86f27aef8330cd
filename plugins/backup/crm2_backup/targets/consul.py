"""Consul KV snapshots: ``GET /v1/snapshot`` and ``PUT /v1/snapshot`` (crm2 itself needs no Consul).

A snapshot is a gzipped tar with ``meta.json``, ``state.bin`` and ``SHA256SUMS``;
a drill cannot restore into a scratch Consul, so it opens the archive and checks
every file against ``SHA256SUMS`` instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import tarfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crm2_backup.errors import BadTargetAddress, TargetFailed
from crm2_backup.targets.base import compare
from crm2_backup.targets.http import request, split_credentials

# written by Consul Enterprise after SHA256SUMS, so never listed in it; Consul accepts it
UNLISTED = frozenset({"SHA256SUMS.sealed"})


def inspect_snapshot(path: Path) -> dict[str, Any]:
    """The files of a snapshot, each listed in and matching ``SHA256SUMS``.

    As Consul's own reader does ("unexpected file in snapshot"), a file the sums do not
    list, or a name twice, fails: a drill must not call an archive sound that Consul
    would refuse to restore, or that carries something nobody vouched for.
    """
    try:
        with tarfile.open(path, "r:gz") as archive:
            sums: dict[str, str] = {}
            digests: dict[str, str] = {}
            twice: list[str] = []
            for member in archive:
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                if member.name in digests or (member.name == "SHA256SUMS" and sums):
                    twice.append(member.name)
                if member.name == "SHA256SUMS":
                    for line in handle.read().decode().splitlines():
                        digest, _, name = line.partition("  ")
                        sums[name.strip()] = digest.strip()
                    continue
                h = hashlib.sha256()
                while block := handle.read(1 << 20):
                    h.update(block)
                digests[member.name] = h.hexdigest()
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise TargetFailed(f"the Consul snapshot does not open: {exc}") from exc
    if not sums:
        raise TargetFailed("the Consul snapshot has no SHA256SUMS")
    if twice:
        raise TargetFailed(f"the Consul snapshot holds a file twice: {sorted(set(twice))}")
    unlisted = sorted(set(digests) - set(sums) - UNLISTED)
    if unlisted:
        raise TargetFailed(f"the Consul snapshot holds files not listed in SHA256SUMS: {unlisted}")
    bad = sorted(n for n, d in sums.items() if digests.get(n) != d)
    if bad:
        raise TargetFailed(f"the Consul snapshot's files do not match SHA256SUMS: {bad}")
    return {"files": sorted(digests)}


def _same_server(a: str, b: str) -> bool:
    """Two credential-free base URLs name one server (scheme, host, port, path)."""
    x, y = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    defaults = {"http": 80, "https": 443}
    return (x.scheme, x.hostname, x.port or defaults[x.scheme], x.path) == (
        y.scheme,
        y.hostname,
        y.port or defaults[y.scheme],
        y.path,
    )


def _shown(to: str) -> str:
    """``to`` as an error may repeat it: a ``user:password@`` in it hidden (the error is the
    restore run's ``error`` and a log line)."""
    if "@" not in to:
        return to
    head, _, tail = to.rpartition("@")
    scheme = head.split("://", 1)[0] + "://" if "://" in head else ""
    return f"{scheme}***@{tail}"


class ConsulTarget:
    """The configured Consul's snapshots.

    Its credentials (the token, and a ``user:password@`` in its URL) go to that Consul
    only: a restore into another one (``--to http://staging:8500``) sends that URL's own
    ``user:password@`` and ``restore_token`` (``CRM2_BACKUP_CONSUL_RESTORE_TOKEN``), or
    nothing — never production's token to a host that merely answers.
    """

    name = "consul"
    extension = ".snap"

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 600,
        *,
        restore_token: str | None = None,
    ) -> None:
        self.base, self.headers = split_credentials(url)
        if token:
            self.headers["X-Consul-Token"] = token
        self.restore_headers = {"X-Consul-Token": restore_token} if restore_token else {}
        self.timeout = timeout

    async def dump(self, path: Path) -> Mapping[str, Any]:
        await request(
            "GET",
            f"{self.base}/v1/snapshot",
            headers=self.headers,
            out_file=path,
            timeout=self.timeout,
        )
        return await asyncio.to_thread(inspect_snapshot, path)

    def _restore_base(self, to: str) -> tuple[str, dict[str, str]]:
        """Where to restore and with which credentials: ``to``'s http(s) URL, or the
        configured Consul (with its own credentials) for an empty one or its own URL.

        Anything else is refused: ``consul.staging:8500`` (no scheme) is another Consul
        misspelt, never a reason to overwrite the configured one's whole state.
        """
        if not to:
            return self.base, self.headers
        try:
            if urllib.parse.urlsplit(to).scheme in ("http", "https"):
                base, headers = split_credentials(to)
                if _same_server(base, self.base):
                    return self.base, {**self.headers, **headers}
                return base, {**self.restore_headers, **headers}
        except (TargetFailed, ValueError):
            pass
        raise BadTargetAddress(
            f"{_shown(to)!r} is not a Consul URL: give http(s)://host:8500, or an empty --to for "
            "the configured Consul"
        )

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        base, headers = self._restore_base(to)
        facts = await asyncio.to_thread(inspect_snapshot, path)
        if not dry_run:
            await request(
                "PUT",
                f"{base}/v1/snapshot",
                headers=headers,
                body_file=path,
                timeout=self.timeout,
            )
        return {"into": base, "dry_run": dry_run, **facts}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        found = await asyncio.to_thread(inspect_snapshot, path)
        compare(self.name, facts, found)
        return {"files": len(found["files"])}
