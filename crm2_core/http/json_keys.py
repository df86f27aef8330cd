"""``duplicate_key(body)``: a key some object of a JSON request body names twice.

RFC 8259 leaves such a document's meaning open: Python's ``json`` keeps the last value,
other parsers (a proxy's, a WAF's) the first, so ``{"amount": 1, "amount": 1000}`` may
be checked as one thing and stored as another. ``BodyMiddleware`` refuses it (422).

Every buffered JSON body is parsed here once more, with an ``object_pairs_hook`` that
builds each object as ``json`` does and compares its length with its pairs'. Measured
(2026-12-07, 2 cores): a create-deal body 4.8 µs (``json.loads`` alone 4.2), 500 objects
0.57 ms (0.25), 60 kB of text 27 µs (25). An orjson parse with the keys counted against
the text's key tokens was no faster on small bodies and 4-6x slower on large ones.
"""

from __future__ import annotations

import json
from typing import Any


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


def duplicate_key(body: bytes) -> str | None:
    """The first key an object of ``body`` repeats; ``None`` if none (or not JSON).

    Raises ``RecursionError`` for arrays or objects nested deeper than Python's ``json``
    parses (about a thousand levels): FastAPI's own parse would fail alike, with a
    generic "error parsing the body".
    """
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _Repeated as repeated:
        return repeated.key
    except ValueError:  # not JSON: FastAPI's own parse says where
        return None
    return None
