"""The console's static build as an ASGI app: caching by kind of file and a strict CSP.

Next.js writes content-hashed files under ``/_next/static/``: those are
immutable for a year. Everything else (the HTML pages, the RSC ``.txt``
payloads, icons) is revalidated on every use (``no-cache`` + ETag), so a new
build shows at the next page load. The CSP allows scripts from this origin and
the inline bootstrap scripts Next.js writes into each page, by their SHA-256
hashes, which are read from the page itself: nothing inline that the build did
not write can run.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.I)
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
NOT_BUILT = (
    b"<!doctype html><meta charset=utf-8><title>crm2</title>"
    b"<p>The crm2 console is not built. Run <code>python3 dev.py run</code> with Node.js "
    b"and npm installed, or set CRM2_CONSOLE_DIST_DIR. The API is at /docs.</p>"
)


def content_security_policy(script_hashes: tuple[str, ...] = ()) -> str:
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in script_hashes)])
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; manifest-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )


def inline_script_hashes(html: bytes) -> tuple[str, ...]:
    """The CSP hash of every inline ``<script>`` of a page, in order, without repeats."""
    hashes: dict[str, None] = {}
    for match in INLINE_SCRIPT.finditer(html):
        digest = hashlib.sha256(match.group(1)).digest()
        hashes[base64.b64encode(digest).decode()] = None
    return tuple(hashes)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list of tags, compared weakly (``W/`` ignored).

    A proxy that compresses the answer (nginx's ``gzip``) turns the strong ETag
    into ``W/"…"``, and browsers send that back.
    """
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


@dataclass(frozen=True)
class _File:
    body: bytes
    etag: str
    headers: dict[str, str]


class ConsoleSite:
    """Serves ``root`` (a Next.js ``output: "export"`` build made with ``trailingSlash``)."""

    def __init__(self, root: Path) -> None:
        # As configured, resolved at each request: a deploy that switches a symlink
        # (``current -> releases/N``) is served from the next request on.
        self.folder = root.absolute()
        self._cache: dict[Path, tuple[int, int, _File]] = {}
        self._cached_root: Path | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(scope["method"], scope["path"], Headers(scope=scope))
        await response(scope, receive, send)

    def respond(self, method: str, path: str, headers: Headers) -> Response:
        if method not in ("GET", "HEAD"):
            return self._plain(405, b"Method Not Allowed", {"Allow": "GET, HEAD"})
        try:
            root = self.folder.resolve()
        except (OSError, RuntimeError):
            root = self.folder
        if root != self._cached_root:  # another release: the old one's files are not needed
            self._cache, self._cached_root = {}, root
        if not (root / "index.html").is_file():
            return self._html(503, NOT_BUILT)
        found = self._resolve(root, path)
        file = None if found is None else self._load(root, found)
        status = 200
        if file is None:
            # A file removed since it was found (a new build going in) is not found either.
            status, file = 404, self._load(root, root / "404.html")
            if file is None:
                return self._plain(404, b"Not Found", {})
        if status == 200 and etag_matches(headers.get("if-none-match"), file.etag):
            return Response(status_code=304, headers={"ETag": file.etag, **file.headers})
        body = b"" if method == "HEAD" else file.body
        response = Response(body, status_code=status, headers={"ETag": file.etag, **file.headers})
        if method == "HEAD":
            response.headers["Content-Length"] = str(len(file.body))
        return response

    def _resolve(self, root: Path, path: str) -> Path | None:
        """The file a URL path names, never outside the build folder."""
        relative = path.lstrip("/")
        if "\x00" in relative or "\\" in relative:
            return None
        try:
            candidate = (root / relative).resolve()
            if candidate != root and root not in candidate.parents:
                return None
            for option in (candidate, candidate / "index.html", candidate.with_suffix(".html")):
                if option.is_file() and (option == root or root in option.parents):
                    return option
        except (OSError, RuntimeError):
            # A name or path longer than the file system allows (ENAMETOOLONG), a symlink
            # loop (RuntimeError from resolve(), ELOOP from is_file()): no such file.
            return None
        return None

    def _load(self, root: Path, path: Path) -> _File | None:
        """The file's body and headers, or ``None`` when it is not there (any more)."""
        try:
            stat = path.stat()
            cached = self._cache.get(path)
            if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
                return cached[2]
            body = path.read_bytes()
        except OSError:
            return None
        suffix = path.suffix.lower()
        headers = dict(SECURITY_HEADERS)
        headers["Content-Type"] = TYPES.get(suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        relative = path.relative_to(root).as_posix()
        hashed = relative.startswith("_next/static/")
        headers["Cache-Control"] = IMMUTABLE if hashed else REVALIDATE
        if suffix == ".html":
            headers["Content-Security-Policy"] = content_security_policy(inline_script_hashes(body))
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        file = _File(body=body, etag=etag, headers=headers)
        self._cache[path] = (stat.st_mtime_ns, stat.st_size, file)
        return file

    def _html(self, status: int, body: bytes) -> Response:
        headers = {
            **SECURITY_HEADERS,
            "Cache-Control": "no-store",
            "Content-Security-Policy": content_security_policy(),
        }
        return Response(body, status_code=status, headers=headers, media_type="text/html")

    def _plain(self, status: int, body: bytes, extra: dict[str, str]) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store", **extra}
        return Response(body, status_code=status, headers=headers, media_type="text/plain")
