"""The response side of a record: its ETag, and Location on create."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Response
from pydantic import BaseModel

from crm2_core.http.etag import etag_for

# A response model with a ``version`` field (one made with ``fields_of=`` has it, though
# a type checker cannot see fields copied from the table).
P = TypeVar("P", bound=BaseModel)


def present(response: Response, public: P) -> P:
    """``public`` with its ``ETag`` header set (what a later PATCH sends as If-Match)."""
    response.headers["ETag"] = etag_for(getattr(public, "version"))  # noqa: B009
    return public


def created(response: Response, location: str, public: P) -> P:
    """A 201's ``Location`` and ``ETag``."""
    response.headers["Location"] = location
    return present(response, public)
