"""The client's address behind trusted proxies only (``CRM2_TRUSTED_PROXIES``).

``X-Forwarded-For`` is whatever the sender wrote: believed, it lets anybody
pick the address the login throttle and the rate limit count against. So the
header is read only when the connection comes from a configured proxy, and
then from the right, skipping the trusted hops: the first address not in the
list is the client. By default no proxy is trusted and the header is ignored
(``crm2 serve`` also turns off uvicorn's own handling, which trusts loopback).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from crm2_core.networks import Network

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: str | None, networks: Sequence[Network]) -> str | None:
    """The client's address, or ``None`` to keep the peer's."""
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return None
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    client = None
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage: keep the last address a trusted hop vouched for
        client = hop
        if not _trusted(hop, networks):
            break
    return client


class ForwardedMiddleware:
    def __init__(self, app: ASGIApp, networks: Sequence[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if self.networks and scope["type"] in ("http", "websocket") and client:
            values = [
                v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"
            ]
            address = client_address(client[0], ",".join(values), self.networks)
            if address is not None:
                scope["client"] = (address, 0)
                for key, value in scope.get("headers", []):
                    if key == b"x-forwarded-proto" and value in (b"http", b"https"):
                        scope["scheme"] = value.decode()
        await self.app(scope, receive, send)
