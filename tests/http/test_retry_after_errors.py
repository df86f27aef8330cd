"""A 503 or 429 that knows when to retry says it one way: ``retry_after=`` seconds, sent
as ``Retry-After`` in whole seconds rounded up, never 0 (the 503's body has it too)."""

from __future__ import annotations

from typing import Any

import pytest

from crm2_core.api import ServiceUnavailable, TooManyRequests, problem_responses, whole_seconds
from crm2_core.testing import Crm2TestApp


class QueueDown(ServiceUnavailable):
    slug, title = "queue-down", "The queue is down"


@pytest.mark.parametrize(
    ("seconds", "sent"), [(0.0, 1), (0.2, 1), (1.0, 1), (1.01, 2), (299.5, 300)]
)
def test_a_503_takes_the_seconds_and_sends_them_rounded_up(seconds: float, sent: int) -> None:
    error = QueueDown("the queue is down", retry_after=seconds)
    assert error.retry_after == sent == whole_seconds(seconds)
    assert error.headers == {"Retry-After": str(sent)}
    assert error.extensions == {"retry_after": sent}


def test_a_503_without_seconds_says_nothing_of_retrying() -> None:
    error = QueueDown("the queue is down")
    assert error.retry_after is None
    assert error.headers == {} and error.extensions == {}


def test_a_503_keeps_its_other_headers_and_extensions() -> None:
    error = QueueDown(headers={"X-Queue": "q1"}, retry_after=2.5, queue="q1")
    assert error.headers == {"X-Queue": "q1", "Retry-After": "3"}
    assert error.extensions == {"queue": "q1", "retry_after": 3}
    assert error.detail == QueueDown.title


def test_a_429_rounds_the_same_way() -> None:
    error = TooManyRequests("slow down", retry_after=0.4)
    assert (error.retry_after, error.headers) == (1, {"Retry-After": "1"})


async def test_the_503_answer_carries_the_header_and_the_body_field(
    crm2_app_factory: Any,
) -> None:
    app: Crm2TestApp = await crm2_app_factory()

    @app.app.get("/test-queue-down", responses=problem_responses(503))
    async def queue_down() -> None:
        raise QueueDown("the queue is down", retry_after=4.2)

    response = await app.client.get("/test-queue-down")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert (body["type"], body["retry_after"]) == ("urn:crm2:problem:queue-down", 5)
