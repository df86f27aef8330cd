"""Python's cyclic garbage collector paused while a batch builds many objects.

A CSV import batch makes thousands of ORM objects, dicts and pydantic models at
once; each allocation burst triggers generation-0 collections, and the survivors
promote into older generations whose collections scan everything alive (the parsed
file included). The batch's objects are freed by reference counting when it ends,
so pausing the collector for the batch costs no memory that lasts, and nothing is
collected on the way out: the collector resumes its own schedule.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable ``gc`` inside; nested uses re-enable it only when the outermost one exits,
    and only if it was enabled when that one entered."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
