"""``duplicate_key(body)``: a key some object of a JSON request body names twice.

RFC 8259 leaves such a document's meaning open: Python's ``json`` keeps the last value,
other parsers (a proxy's, a WAF's) the first, so ``{"amount": 1, "amount": 1000}`` may
be checked as one thing and stored as another. ``BodyMiddleware`` refuses it (422).

Every JSON body passes here before FastAPI parses it, so the check must cost next to
nothing: orjson parses (~5x faster than ``json``), and the keys the parsed document holds
are counted against the key tokens in the text (a C regex). Equal counts mean no object
lost a key. Otherwise (a repeated key, or the same key written with another escape), and
for what orjson refuses but ``json`` takes (NaN, a UTF-16 body), ``json`` parses again
with a hook that names the repeated key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# A string token, and the ":" after it when it is an object's key. Run over a document
# orjson accepted, every match starts at a token's opening quote, so the keys are exact.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"(\s*+:)?', re.DOTALL)


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Repeated(key)
            seen.add(key)
    return found


def _parsed_keys(value: Any) -> int:
    """How many keys every object in ``value`` holds, counted without recursion."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return count


def _named(body: bytes) -> str | None:
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _Repeated as repeated:
        return repeated.key
    except (ValueError, RecursionError):  # not JSON: FastAPI's parser says where
        return None
    return None


def duplicate_key(body: bytes) -> str | None:
    """The first key an object of ``body`` repeats; ``None`` if none (or not JSON)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _named(body)
    if not isinstance(document, dict | list):
        return None
    tokens = _STRING.findall(body)
    keys = len(tokens) - tokens.count(b"")
    if keys == _parsed_keys(document):
        return None
    return _named(body)
