"""Values at the edges of what the API takes, and what they used to break later: a
4-decimal currency's 15-digit amount, a pipeline's sum past 64 bits, a system activity's
subject built from long names, an import's growing lists, a job near 9999-12-31.
On both databases."""

from __future__ import annotations

from datetime import date

from crm2_deals.jobs import run_policy_maintenance
from crm2_deals.models import Activity
from deals_kit import API, Deals
from sqlalchemy import select

LARGEST_CLF = "999999999999999.9999"  # passes Amount; 10^19 minor units, past BIGINT


async def test_a_4_decimal_amount_past_64_bits_is_422(deals: Deals) -> None:
    admin = await deals.app.login("admin")
    client = await deals.create_client(admin)
    deal = await deals.client.post(
        f"{API}/deals",
        json={"title": "x", "client_id": client["id"], "value": LARGEST_CLF, "currency": "CLF"},
        headers=admin,
    )
    assert deal.status_code == 422 and "CLF amounts are at most" in deal.text, deal.text
    policy = await deals.client.post(
        f"{API}/policies",
        json={"number": "N1", "insurer": "I", "client_id": client["id"], "product": "p",
              "premium": LARGEST_CLF, "currency": "UYW", "start_date": "2026-01-01",
              "end_date": "2027-01-01"},
        headers=admin,
    )  # fmt: skip
    assert policy.status_code == 422, policy.text
    listed = await deals.client.get(
        f"{API}/deals/export", params={"value_max": LARGEST_CLF, "currency": "CLF"}, headers=admin
    )
    assert listed.status_code in (200, 422), listed.text


async def test_a_stages_sum_past_64_bits_is_added_up_exactly(deals: Deals) -> None:
    admin = await deals.app.login("admin")
    client = await deals.create_client(admin)
    big = "900000000000000.0000"  # 9 * 10^18 minor units each: fits; two of them do not
    first = await deals.create_deal(admin, client["id"], value=big, currency="CLF")
    await deals.create_deal(admin, client["id"], value=big, currency="CLF")
    url = f"{API}/pipelines/{first['pipeline_id']}/summary"
    for params in ({}, {"by_owner": "true"}):
        summary = await deals.client.get(url, params=params, headers=admin)
        assert summary.status_code == 200, summary.text
        assert "1800000000000000.0000" in summary.text


async def test_a_move_with_a_long_lost_reason_keeps_it_whole_in_the_activity(
    deals: Deals,
) -> None:
    agent = await deals.app.login("agent")
    client = await deals.create_client(agent)
    deal = await deals.create_deal(agent, client["id"])
    lost = deals.stage(await deals.pipeline(agent), "Lost")
    reason = "r" * 1000  # the move's schema takes 1,000; the activity's subject holds 300
    moved = await deals.client.post(
        f"{API}/deals/{deal['id']}/move",
        json={"stage_id": lost["id"], "lost_reason": reason},
        headers=agent,
    )
    assert moved.status_code == 200, moved.text
    async with deals.app.context.session_factory() as session:
        (activity,) = (
            await session.execute(select(Activity).where(Activity.kind == "system"))
        ).scalars()
    assert len(activity.subject) == 300 and activity.subject.endswith("\u2026")
    assert reason in activity.body


async def test_an_import_cannot_grow_a_clients_lists_past_their_limits(deals: Deals) -> None:
    admin = await deals.app.login("admin")
    client = await deals.create_client(
        admin, name="Same", emails=[f"m{i}@x.example" for i in range(20)]
    )
    more = ";".join(f"n{i}@x.example" for i in range(5))
    answer = await deals.client.post(
        f"{API}/clients/import",
        files={"file": ("c.csv", f"name,emails\nSame,m0@x.example;{more}\n".encode(), "text/csv")},
        headers=admin,
    )
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["report"]["errors"]
    assert error["row"] == 2 and "emails: the client would have 25, at most 20" in error["reason"]
    got = await deals.client.get(f"{API}/clients/{client['id']}", headers=admin)
    assert len(got.json()["emails"]) == 20


async def test_an_import_matches_only_clients_the_importer_may_see(deals: Deals) -> None:
    """An importer without deals:all_records (a role of agent's permissions and import)."""
    admin = await deals.app.login("admin")
    agent_role = await deals.client.get("/api/v1/auth/roles/agent", headers=admin)
    role = {"name": "importer", "permissions": [*agent_role.json()["permissions"], "deals:import"]}
    made = await deals.client.post("/api/v1/auth/roles", json=role, headers=admin)
    assert made.status_code == 201, made.text
    other = await deals.app.login("agent")
    await deals.create_client(other, name="Secret One", emails=["one@secret.example"])
    await deals.create_client(other, name="Secret Two", emails=["two@secret.example"])
    importer = await deals.app.login("importer")
    answer = await deals.client.post(
        f"{API}/clients/import",
        params={"dry_run": "true"},
        files={"file": ("c.csv", b"name,emails\nP,one@secret.example;two@secret.example\n")},
        headers=importer,
    )
    # clients the importer cannot see are no match to them: the row is a new client
    assert answer.status_code == 200, answer.text
    assert "Secret" not in answer.text and "another owner" not in answer.text
    assert answer.json()["created"] == 1, answer.text


async def test_the_policy_job_runs_at_the_calendars_end(deals: Deals) -> None:
    """``crm2 deals run-jobs --today 9999-12-20``: the renewal horizon stops at date.max."""
    for today in (date(9999, 12, 20), date(9999, 12, 31)):
        await run_policy_maintenance(deals.app.context, today)
