"""The commands' console, made when a command first prints.

rich is imported then, not when the commands are registered: every ``crm2`` run
registers them all, and ``crm2 serve`` prints its one line with click, so a server
starts without importing rich (20-30 ms of CPU before the first request).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@cache
def console() -> Console:
    """The one console the core's commands print through."""
    from rich.console import Console

    return Console()
