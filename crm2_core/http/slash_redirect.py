"""The ``Location`` of the trailing-slash redirect: a relative reference, never a URL.

Starlette's router writes ``URL(scope=...)``: the scheme and host come from the request's
``Host`` header and the server's own view of the connection, so a client (or a cache keyed
without ``Host``) is sent to ``http://<whatever Host said>/…``, and ``http://`` even behind
a TLS proxy; the path is the decoded one written back as is, so an encoded ``%2523`` comes
back as ``%23`` and names another resource. RFC 9110 §10.2.2 lets ``Location`` be a
relative reference: the path the client sent, as it sent it, and its query.
"""

from __future__ import annotations

from urllib.parse import quote, quote_from_bytes, unquote

from starlette.types import Scope

# Characters a path may hold unencoded (RFC 3986 pchar and "/"), a query "?" too; every
# other byte is percent-encoded. Subsets of what Starlette's ``RedirectResponse`` leaves
# unquoted, so it writes the header unchanged.
_PATH = "/:@!$&'()*+,;="
_QUERY = _PATH + "?"


def _toggled(raw: str, adding: bool) -> str:
    return raw + "/" if adding else raw.rstrip("/")


def slash_redirect_location(scope: Scope, target_path: str) -> str:
    """``Location`` for a redirect of ``scope``'s request to ``target_path`` (a full path,
    ``root_path`` included, decoded as ``scope["path"]`` is): the raw path as sent with its
    trailing slash added or removed, when it decodes to the target; else the target encoded."""
    adding = target_path.endswith("/")
    raw_path = scope.get("raw_path")
    path: str | None = None
    if isinstance(raw_path, bytes):
        sent = quote_from_bytes(raw_path, safe=_PATH + "%")
        candidate = _toggled(sent, adding)
        if unquote(candidate) == target_path:
            path = candidate
    if path is None:
        path = quote(target_path, safe=_PATH)
    if path.startswith("//"):
        # "//x" would be a network-path reference (another host); "/.//x" is the same
        # path on this one (RFC 3986 §5.2.4 removes the dot segment).
        path = "/." + path
    query: bytes = scope.get("query_string", b"")
    if query:
        return path + "?" + quote_from_bytes(query, safe=_QUERY + "%")
    return path
