"""A payment linked to a record follows that record's owner, whichever event says it changed.

The README: "a payment's owner is the owner of its record (… the linked record's owner
for one entered with a `link`)". Records change hands by ``*.updated`` events (deals'
PATCH, client hand-over, a user's reassignment) and by ``*.assigned`` ones (tasks: a task
given to another user, by hand or by SLA escalation); ``payments.follow_owner`` used to
listen to ``*.updated`` only, and read an ``owner_id`` that a task does not have.
"""

from __future__ import annotations

from payments_kit import Payments, User

TASKS = "/api/v1/tasks"
DEALS = "/api/v1/deals"


async def _task(p: Payments, creator: User, assignee: User) -> str:
    made = await p.client.post(
        f"{TASKS}/tasks",
        json={"title": "Collect the premium", "assignee_id": str(assignee.id)},
        headers=creator.headers,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_a_payment_linked_to_a_task_belongs_to_its_assignee(with_tasks: Payments) -> None:
    p = with_tasks
    manager, agent = await p.user("manager"), await p.user("agent")
    task_id = await _task(p, manager, agent)
    made = await p.create(manager, link={"kind": "tasks.task", "id": task_id})
    assert made["owner_id"] == str(agent.id)
    assert (await p.get(agent, made["id"])).status_code == 200


async def test_a_payment_linked_to_a_task_follows_its_reassignment(with_tasks: Payments) -> None:
    p = with_tasks
    manager, first, second = [await p.user(r) for r in ("manager", "agent", "agent")]
    task_id = await _task(p, manager, first)
    made = await p.create(manager, link={"kind": "tasks.task", "id": task_id})
    await p.app.settle_events()
    assigned = await p.client.post(
        f"{TASKS}/tasks/{task_id}/assign",
        json={"assignee_id": str(second.id)},
        headers=manager.headers,
    )
    assert assigned.status_code == 200, assigned.text
    await p.app.settle_events()
    theirs = await p.get(second, made["id"])
    assert theirs.status_code == 200 and theirs.json()["owner_id"] == str(second.id)
    assert (await p.get(first, made["id"])).status_code == 404
    [moved] = await p.events("payments.payment.updated")
    assert moved.data["changed"] == ["owner_id"]
    assert moved.data["previous_owner_id"] == str(first.id)


async def test_a_payment_linked_to_a_deal_follows_its_clients_hand_over(
    with_deals: Payments,
) -> None:
    """A client's hand-over carries the previous owner's deals on it along (one
    ``deals.deal.updated`` each): the payment linked to the deal goes with it."""
    p = with_deals
    admin, first, second = [await p.user(r) for r in ("admin", "agent", "agent")]
    client = await p.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Ola"}, headers=first.headers
    )
    assert client.status_code == 201, client.text
    client_id = client.json()["id"]
    pipelines = await p.client.get(f"{DEALS}/pipelines", headers=first.headers)
    pipeline = pipelines.json()["items"][0]["id"]
    deal = await p.client.post(
        f"{DEALS}/deals",
        json={"title": "Motor", "client_id": client_id, "pipeline_id": pipeline,
              "value": "100.00", "currency": "EUR"},
        headers=first.headers,
    )  # fmt: skip
    assert deal.status_code == 201, deal.text
    made = await p.create(first, link={"kind": "deals.deal", "id": deal.json()["id"]})
    await p.hand_over(admin, f"{DEALS}/clients/{client_id}", second)
    await p.app.settle_events()
    theirs = await p.get(second, made["id"])
    assert theirs.status_code == 200 and theirs.json()["owner_id"] == str(second.id)
    assert (await p.get(first, made["id"])).status_code == 404
