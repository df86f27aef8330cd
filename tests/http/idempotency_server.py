"""Run the core API under uvicorn for the Idempotency-Key crash tests (a subprocess).

``CRM2_TEST_PAUSE_AT=before_commit|after_commit`` freezes the process when the
transaction of a POST with an Idempotency-Key is about to commit, or has just
committed (its response not yet sent), after writing ``CRM2_TEST_PAUSE_MARKER``:
the test then SIGKILLs it exactly there.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import uvicorn
from sqlalchemy import event
from sqlalchemy.orm import Session

from crm2_core.http.app import build_app_context, create_app
from crm2_core.http.idempotency_tx import IDEMPOTENCY_STATE
from crm2_core.settings import Settings


def pause_at(point: str, marker: Path) -> None:
    def freeze(session: Session) -> None:
        if IDEMPOTENCY_STATE in session.info:
            marker.write_text(point)
            time.sleep(120)  # blocks the whole process: the test kills it meanwhile

    event.listen(Session, point, freeze)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    point = os.environ.get("CRM2_TEST_PAUSE_AT")
    if point:
        pause_at(point, Path(os.environ["CRM2_TEST_PAUSE_MARKER"]))
    context = build_app_context(Settings(_env_file=None))  # type: ignore[call-arg]
    uvicorn.run(
        create_app(context=context), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning"
    )
