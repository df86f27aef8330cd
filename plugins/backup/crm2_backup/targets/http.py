"""A small HTTP client on the standard library, run in a thread; bodies stream to/from files."""

from __future__ import annotations

import asyncio
import base64
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from crm2_backup.errors import TargetFailed


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``http://user:pass@host/`` → (``http://host/``, an ``Authorization`` header)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetFailed("give an http:// or https:// URL")
    headers: dict[str, str] = {}
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if parts.username is not None:
        pair = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), headers


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would send it every header, the Consul token and
    the Basic credentials too, to whatever host the ``Location`` names."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        where = urllib.parse.urlsplit(newurl)
        raise TargetFailed(
            f"{req.get_method()} {urllib.parse.urlsplit(req.full_url).path}: HTTP {code} "
            f"redirect to {where.scheme}://{where.hostname}{where.path} not followed "
            "(credentials go to the configured address only): give the final URL"
        )


def _request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body_file: Path | None,
    body: bytes | None,
    out_file: Path | None,
    timeout: float,
) -> bytes:
    data: object = body
    handle = None
    all_headers = dict(headers)
    if body_file is not None:
        handle = body_file.open("rb")
        data = handle
        all_headers["Content-Length"] = str(body_file.stat().st_size)
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # type: ignore[arg-type]
    try:
        opener = urllib.request.build_opener(_NoRedirects)  # per call: nothing at import
        with opener.open(request, timeout=timeout) as response:
            if out_file is not None:
                with out_file.open("wb") as out:
                    shutil.copyfileobj(response, out, 1 << 20)
                return b""
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace")
        raise TargetFailed(
            f"{method} {urllib.parse.urlsplit(url).path}: HTTP {exc.code} {detail}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise TargetFailed(f"{method} {urllib.parse.urlsplit(url).path}: {exc}") from None
    finally:
        if handle is not None:
            handle.close()


async def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body_file: Path | None = None,
    body: bytes | None = None,
    out_file: Path | None = None,
    timeout: float = 300,  # noqa: ASYNC109 - the socket timeout of the thread doing the I/O
) -> bytes:
    return await asyncio.to_thread(
        _request, method, url, headers or {}, body_file, body, out_file, timeout
    )
