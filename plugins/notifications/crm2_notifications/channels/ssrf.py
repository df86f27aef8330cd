"""The SSRF guard of outbound webhooks: resolve, check every address, connect to the checked one.

A host is resolved with ``getaddrinfo`` (which also reads ``0x7f000001``,
``2130706433`` and ``0177.0.0.1`` as 127.0.0.1), and every address it resolves
to must be public: no loopback, private, link-local (169.254.169.254, the cloud
metadata service), multicast, reserved or unspecified address, IPv4-mapped IPv6
included, nor a 6to4 address (2002::/16) wrapping one (NAT64's 64:ff9b::/96 and
Teredo's 2001::/32 are not global: refused as such).
Resolution has ``RESOLVE_TIMEOUT`` (the system resolver has none of ours:
a dead name server held a save request for its own retries), in threads of its own, so
resolutions stuck past it cannot take the threads other work runs in.
The request then goes to that very address (the Host header and TLS
SNI keep the name), so a second DNS answer cannot swap in another target.
Redirects are never followed (``webhook.post``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
RESOLVE_TIMEOUT = 5.0  # seconds for a host's addresses
# getaddrinfo cannot be cancelled: one past its time goes on in its thread, so these
# threads are not the loop's default ones (past 8 stuck, a resolution waits, then times out)
_RESOLVERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="crm2-resolve")


class TargetRefused(ValueError):
    """The URL may not be reached from this server."""


class ResolveTimedOut(TargetRefused):
    """The host did not resolve within ``RESOLVE_TIMEOUT``: maybe later, not "never"."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (Host header, SNI)
    address: str  # the checked IP to connect to
    port: int
    path: str  # path + query


def forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # 6to4 (2002::/16) counts as global, but carries the IPv4 address a relay (or the
    # host's own 6to4 tunnel) delivers to: that one must be public too
    wrapped = address.sixtofour if isinstance(address, ipaddress.IPv6Address) else None
    if wrapped is not None and forbidden(wrapped):
        return True
    return bool(
        address in METADATA
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def parse(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # an unbalanced "[" or "]": "Invalid IPv6 URL"
        raise TargetRefused(f"{url[:100]!r} is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise TargetRefused(f"{url[:100]!r} is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in webhook URLs are not allowed")
    try:
        given = parts.port
    except ValueError as exc:
        raise TargetRefused(f"bad port in {url[:100]!r}") from exc
    if given == 0:  # "or the default" below would quietly send it to port 80 / 443
        raise TargetRefused(f"bad port in {url[:100]!r}")
    port = given or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, hostname, port, path


def allow_private(context: Any) -> bool:
    """The test-only escape hatch; never in production, whatever the setting says."""
    setting = bool(context.plugin_settings("notifications").webhook_allow_private_targets)
    return setting and context.settings.env != "production"


def _resolve_host(host: str, port: int) -> list[Any]:
    return list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


async def resolve(url: str, *, allow_private: bool = False) -> Target:
    scheme, host, port, path = parse(url)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await loop.run_in_executor(_RESOLVERS, _resolve_host, host, port)
    except TimeoutError as exc:
        raise ResolveTimedOut(
            f"{host!r} did not resolve within {RESOLVE_TIMEOUT:g} s (its name servers did "
            "not answer in time): try again, or check the host name"
        ) from exc
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"{host!r} does not resolve") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"{host!r} does not resolve")
    if not allow_private:
        bad = [str(a) for a in addresses if forbidden(a)]
        if bad:
            raise TargetRefused(f"{host!r} resolves to a non-public address ({', '.join(bad)})")
    return Target(scheme, host, str(addresses[0]), port, path)
