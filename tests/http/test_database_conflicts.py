"""A write the database refuses for a race the service did not foresee (a unique name
taken meanwhile, a serialization conflict) is a 409 problem, not a 500; the
transaction is rolled back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crm2_core.api import PreconditionFailed, SessionDep, problem_responses
from crm2_hookspecs import PluginManifest, hookimpl

PATH = "/api/v1/racy"


class Racy:
    manifest = PluginManifest(name="racy", title="Database refusals (test only)")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix=PATH)

        @router.post("/duplicate")
        async def duplicate(session: SessionDep) -> dict[str, str]:
            # The same key twice, as two racing requests would: the driver's own error.
            await session.execute(text("CREATE TEMPORARY TABLE racy_names (name TEXT PRIMARY KEY)"))
            await session.execute(text("INSERT INTO racy_names (name) VALUES ('taken')"))
            await session.execute(text("INSERT INTO racy_names (name) VALUES ('taken')"))
            return {"never": "reached"}

        @router.post("/serialization")
        async def serialization(session: SessionDep) -> dict[str, str]:
            await session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'racing' USING ERRCODE = '40001'; END $$")
            )
            return {"never": "reached"}

        @router.post("/stale", responses=problem_responses(409, 412))
        async def stale() -> dict[str, str]:
            # What update_versioned raises when another writer bumped the version first.
            raise PreconditionFailed("the resource changed while you were updating it")

        @router.post("/syntax")
        async def syntax(session: SessionDep) -> dict[str, str]:
            await session.execute(text("SELEC 1"))
            return {"never": "reached"}

        return [router]


async def test_a_constraint_a_race_breaks_is_a_conflict(crm2_app_factory: Any) -> None:
    crm2 = await crm2_app_factory(plugins=["racy"], extra_plugins=(Racy(),))
    response = await crm2.client.post(f"{PATH}/duplicate")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:crm2:problem:conflict" and "retry" in body["detail"]
    assert "racy_names" not in response.text  # nothing of the statement reaches the client


async def test_a_serialization_failure_is_a_conflict_on_postgresql(crm2_app_factory: Any) -> None:
    crm2 = await crm2_app_factory(plugins=["racy"], extra_plugins=(Racy(),))
    if not crm2.context.settings.database_url.startswith("postgresql"):
        return  # SQLite serialises writers; it has no such error
    response = await crm2.client.post(f"{PATH}/serialization")
    assert response.status_code == 409, response.text


async def test_other_database_errors_stay_server_errors(crm2_app_factory: Any) -> None:
    crm2 = await crm2_app_factory(plugins=["racy"], extra_plugins=(Racy(),))
    with pytest.raises(DBAPIError):  # the test client re-raises what the server logs as a 500
        await crm2.client.post(f"{PATH}/syntax")


async def test_a_lost_race_is_412_only_for_a_request_that_sent_if_match(
    crm2_app_factory: Any,
) -> None:
    """RFC 9110: 412 answers a precondition the client sent; without one it is a conflict."""
    crm2 = await crm2_app_factory(plugins=["racy"], extra_plugins=(Racy(),))
    unconditional = await crm2.client.post(f"{PATH}/stale")
    assert unconditional.status_code == 409, unconditional.text
    body = unconditional.json()
    assert body["type"] == "urn:crm2:problem:conflict" and "retry" in body["detail"]
    conditional = await crm2.client.post(f"{PATH}/stale", headers={"If-Match": '"v1"'})
    assert conditional.status_code == 412, conditional.text
    assert conditional.json()["type"] == "urn:crm2:problem:precondition-failed"
