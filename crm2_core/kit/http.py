"""The response side of a record: its ETag, and Location on create."""

from __future__ import annotations

from typing import Protocol, TypeVar

from fastapi import Response

from crm2_core.http.etag import etag_for


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


P = TypeVar("P", bound=Versioned)


def present(response: Response, public: P) -> P:
    """``public`` with its ``ETag`` header set (what a later PATCH sends as If-Match)."""
    response.headers["ETag"] = etag_for(public.version)
    return public


def created(response: Response, location: str, public: P) -> P:
    """A 201's ``Location`` and ``ETag``."""
    response.headers["Location"] = location
    return present(response, public)
