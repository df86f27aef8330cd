"""Record a whole test run's log as crm2 writes it, then look for the secrets the run used.

The run's log goes through the same filter and JSON formatter as production
(``CRM2_LOG_FORMAT=json``), so a secret found here is one an operator's log
would have held.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from crm2_core.observability.logs import JsonFormatter, RedactingFilter

# Issued tokens are not known in advance: any JWT at all is a leak.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")
BEARER = re.compile(r"(?i)\bbearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}")


def start_recording(path: Path) -> logging.Handler:
    """Send every INFO-and-above record of this process to ``path``, as crm2 formats it."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return handler


def stop_recording(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def find_leaks(lines: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Lines holding a known secret, a JWT or an unmasked bearer credential."""
    known = [s for s in secrets if s]
    leaks = []
    for number, line in enumerate(lines, start=1):
        if any(s in line for s in known) or JWT.search(line) or BEARER.search(line):
            leaks.append(f"line {number}: {line.strip()[:300]}")
    return leaks
