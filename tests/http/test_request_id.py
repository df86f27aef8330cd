"""``X-Request-ID``: a safe one is echoed, otherwise the server makes one."""

from __future__ import annotations

import os
import re

from crm2_core.http.middleware import _new_request_id
from crm2_core.testing import Crm2TestApp

GENERATED = re.compile(r"^[0-9a-f]{32}$")


async def test_safe_request_id_is_echoed(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/healthz", headers={"X-Request-ID": "client-42.retry:1"})

    assert response.headers["x-request-id"] == "client-42.retry:1"


async def test_missing_request_id_is_generated(crm2: Crm2TestApp) -> None:
    first = await crm2.client.get("/healthz")
    second = await crm2.client.get("/healthz")

    assert GENERATED.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_unsafe_request_id_is_replaced(crm2: Crm2TestApp) -> None:
    unsafe = "<script>alert(1)</script> " + "x" * 200

    response = await crm2.client.get("/healthz", headers={"X-Request-ID": unsafe})

    assert GENERATED.match(response.headers["x-request-id"])


async def test_problem_body_carries_the_request_id(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/api/v1/nowhere", headers={"X-Request-ID": "trace-7"})

    assert response.json()["request_id"] == "trace-7"
    assert response.headers["x-request-id"] == "trace-7"


def test_a_forked_worker_makes_other_ids_than_its_parent() -> None:
    """Generated ids come from Python's generator, which a forked child reseeds: two
    workers forked from one parent never hand out the same sequence."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(writer, "".join(_new_request_id() for _ in range(4)).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    theirs = os.read(reader, 1024).decode()
    os.close(reader)
    ours = "".join(_new_request_id() for _ in range(4))
    assert len(theirs) == len(ours) == 128
    assert theirs != ours
