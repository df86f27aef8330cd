"""Deals: defaults, CRUD, filters, sorting, pagination, idempotent create, events."""

from __future__ import annotations

from crm2_deals.schemas.deals import DealCreate
from crm2_deals.service.deals import create_deal
from deals_kit import API, Deals

from crm2_core.testing import sent_to_postgresql
from crm2_hookspecs import Principal


async def test_create_defaults_to_default_pipeline_first_open_stage(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    pipeline = await deals.pipeline(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"], title="Fleet insurance")
    assert deal["pipeline_id"] == pipeline["id"]
    assert deal["stage_id"] == deals.stage(pipeline, "Lead")["id"]
    assert deal["status"] == "open" and deal["closed_at"] is None
    assert deal["value"] == "100.00" and deal["currency"] == "EUR"
    assert deal["owner_id"] == str(admin.id)
    renewals = await deals.pipeline(admin.headers, "Renewals")
    other = await deals.create_deal(admin.headers, client["id"], pipeline_id=renewals["id"])
    assert other["stage_id"] == deals.stage(renewals, "Renewal due")["id"]
    by_stage = await deals.create_deal(
        admin.headers, client["id"], stage_id=deals.stage(renewals, "Quoted")["id"]
    )
    assert by_stage["pipeline_id"] == renewals["id"]


async def test_stage_of_another_pipeline_is_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    default = await deals.pipeline(admin.headers)
    renewals = await deals.pipeline(admin.headers, "Renewals")
    body = {
        "title": "X",
        "client_id": client["id"],
        "value": "1.00",
        "currency": "EUR",
        "pipeline_id": default["id"],
        "stage_id": deals.stage(renewals, "Quoted")["id"],
    }
    response = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["type"].endswith("deals-stage-not-in-pipeline")


async def test_created_in_won_stage_is_closed_and_lost_needs_reason(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    pipeline = await deals.pipeline(admin.headers)
    won = await deals.create_deal(
        admin.headers, client["id"], stage_id=deals.stage(pipeline, "Won")["id"]
    )
    assert won["status"] == "won" and won["closed_at"] is not None
    body = {
        "title": "L",
        "client_id": client["id"],
        "stage_id": deals.stage(pipeline, "Lost")["id"],
    }
    refused = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    assert refused.status_code == 422
    lost = await deals.create_deal(
        admin.headers, client["id"], stage_id=body["stage_id"], lost_reason="Went quiet"
    )
    assert (lost["status"], lost["lost_reason"]) == ("lost", "Went quiet")


async def test_get_patch_delete(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    other = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"])
    url = f"{API}/deals/{deal['id']}"
    got = await deals.client.get(url, headers=admin.headers)
    assert got.status_code == 200 and got.headers["etag"] == '"v1"'
    assert (
        await deals.client.patch(url, json={"title": "T"}, headers=admin.headers)
    ).status_code == 428
    patched = await deals.client.patch(
        url,
        json={
            "title": "Renamed",
            "client_id": other["id"],
            "value": "250.50",
            "expected_close_date": "2027-03-31",
            "source": "referral",
        },
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["title"], body["client_id"], body["value"]) == ("Renamed", other["id"], "250.50")
    assert body["expected_close_date"] == "2027-03-31" and patched.headers["etag"] == '"v2"'
    stale = await deals.client.patch(
        url, json={"title": "Late"}, headers={**admin.headers, "If-Match": '"v1"'}
    )
    assert stale.status_code == 412
    stage_via_patch = await deals.client.patch(
        url, json={"stage_id": deal["stage_id"]}, headers={**admin.headers, "If-Match": '"v2"'}
    )
    assert stage_via_patch.status_code == 422
    reason_on_open = await deals.client.patch(
        url, json={"lost_reason": "x"}, headers={**admin.headers, "If-Match": '"v2"'}
    )
    assert reason_on_open.status_code == 422
    assert (await deals.client.delete(url, headers=admin.headers)).status_code == 204
    assert (await deals.client.get(url, headers=admin.headers)).status_code == 404


async def test_list_filters_sort_and_pages(deals: Deals) -> None:
    # another owner who may own a deal on any client (a manager: one who sees them all)
    admin, other = await deals.user("admin"), await deals.user("manager")
    client = await deals.create_client(admin.headers)
    pipeline = await deals.pipeline(admin.headers)
    renewals = await deals.pipeline(admin.headers, "Renewals")
    small = await deals.create_deal(admin.headers, client["id"], title="Small car", value="10.00")
    big = await deals.create_deal(
        admin.headers, client["id"], title="Big fleet", value="5000.00",
        expected_close_date="2027-01-15", stage_id=deals.stage(pipeline, "Proposal")["id"],
    )  # fmt: skip
    usd = await deals.create_deal(admin.headers, client["id"], title="US", currency="USD")
    renewal = await deals.create_deal(
        admin.headers, client["id"], title="Renewal", pipeline_id=renewals["id"],
        owner_id=str(other.id),
    )  # fmt: skip
    won = await deals.create_deal(
        admin.headers, client["id"], title="Won one", stage_id=deals.stage(pipeline, "Won")["id"]
    )
    other_client = await deals.create_client(admin.headers)
    elsewhere = await deals.create_deal(admin.headers, other_client["id"], title="Elsewhere")

    async def ids(**params: str) -> set[str]:
        response = await deals.client.get(f"{API}/deals", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        return {d["id"] for d in response.json()["items"]}

    assert await ids(status="won") == {won["id"]}
    assert await ids(pipeline=renewals["id"]) == {renewal["id"]}
    assert await ids(stage=deals.stage(pipeline, "Proposal")["id"]) == {big["id"]}
    assert await ids(owner=str(other.id)) == {renewal["id"]}
    assert await ids(client=other_client["id"]) == {elsewhere["id"]}
    assert await ids(q="FLEET") == {big["id"]}
    assert await ids(currency="usd") == {usd["id"]}
    assert await ids(currency="EUR", value_min="100", value_max="5000.00") == {
        big["id"], renewal["id"], won["id"], elsewhere["id"],
    }  # fmt: skip
    assert await ids(currency="EUR", value_max="99.99") == {small["id"]}
    assert await ids(expected_close_from="2027-01-01", expected_close_to="2027-01-31") == {
        big["id"]
    }
    no_currency = await deals.client.get(
        f"{API}/deals", params={"value_min": "1"}, headers=admin.headers
    )
    assert no_currency.status_code == 422
    too_precise = await deals.client.get(
        f"{API}/deals", params={"value_min": "1.001", "currency": "EUR"}, headers=admin.headers
    )
    assert too_precise.status_code == 422

    values: list[str] = []
    cursor = None
    while True:
        params = {"sort": "-value", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await deals.client.get(f"{API}/deals", params=params, headers=admin.headers)).json()
        values += [d["value"] for d in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert values[0] == "5000.00" and len(values) == 6


async def test_idempotent_replay_creates_one_deal(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    body = {"title": "Once", "client_id": client["id"], "value": "1.00", "currency": "EUR"}
    headers = {**admin.headers, "Idempotency-Key": "deal-once"}
    first = await deals.client.post(f"{API}/deals", json=body, headers=headers)
    second = await deals.client.post(f"{API}/deals", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    listed = await deals.client.get(f"{API}/deals", headers=admin.headers)
    assert len(listed.json()["items"]) == 1
    assert len(await deals.events("deals.deal.created")) == 1


async def test_deal_events(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"], value="12.30")
    await deals.client.patch(
        f"{API}/deals/{deal['id']}",
        json={"value": "15.00", "title": "Bigger"},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    rows = [e for e in await deals.events() if e.subject == deal["id"]]
    assert [e.type for e in rows] == ["deals.deal.created", "deals.deal.updated"]
    assert rows[0].data["value"] == "12.30" and rows[0].data["client_id"] == client["id"]
    assert rows[1].data["changed"] == ["title", "value"]


def _sent_kinds(sent: list[str]) -> list[str]:
    """What a request sent, by first word (a role cache may read or not: left out)."""
    return [s.split()[0].rstrip(";") for s in sent if "auth_" not in s]


async def test_a_create_is_one_round_trip_once_its_start_is_known(counting_deals: Deals) -> None:
    """The first create reads (client visible + the pipeline's first open stage), then
    writes (the deal, its stage move and its event in one statement) at the commit by
    itself: no BEGIN, no COMMIT on the wire (``crm2_core.db.held``). The next ones only
    write: the stage read last is the guess, which the write itself checks
    (``insert_together_if``). SQLite: the usual flush."""
    deals = counting_deals
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    await deals.app.settle_events()
    # what the request itself sends (the relay and handlers run beside it, in their tasks)
    with sent_to_postgresql() as sent:
        first = await deals.create_deal(admin.headers, client["id"])
    with sent_to_postgresql() as sent_again:
        deal = await deals.create_deal(admin.headers, client["id"], title="One trip")
    if deals.app.context.engine.dialect.name == "postgresql":
        assert _sent_kinds(sent) == ["SELECT", "WITH"], sent
        assert _sent_kinds(sent_again) == ["WITH"], sent_again
    assert deal["stage_id"] == first["stage_id"] and deal["status"] == "open"
    await deals.app.settle_events()
    created = [e for e in await deals.events("deals.deal.created") if e.subject == deal["id"]]
    assert len(created) == 1 and created[0].data["title"] == "One trip"
    assert created[0].data["stage_id"] == first["stage_id"]
    history = await deals.client.get(f"{API}/deals/{deal['id']}/history", headers=admin.headers)
    assert history.status_code == 200 and len(history.json()["items"]) == 1


async def test_a_wrong_guess_costs_one_read_and_the_deal_starts_where_it_should(
    counting_deals: Deals,
) -> None:
    """A new default pipeline, then its stages reordered, after this process cached
    where deals start: the guessed write writes nothing, and the usual read puts the
    deal in the first open stage of now, with one deal, one move and one event."""
    deals = counting_deals
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    await deals.create_deal(admin.headers, client["id"])  # the guess: "New business"
    stages = [{"name": "Call", "probability": 20}, {"name": "Offer", "probability": 60}]
    answer = await deals.client.post(
        f"{API}/pipelines",
        json={"name": "Cross-sell", "stages": stages, "is_default": True},
        headers=admin.headers,
    )
    assert answer.status_code == 201, answer.text
    pipeline = answer.json()
    with sent_to_postgresql() as sent:
        moved = await deals.create_deal(admin.headers, client["id"], title="Moved on")
    assert moved["pipeline_id"] == pipeline["id"]
    assert moved["stage_id"] == deals.stage(pipeline, "Call")["id"]
    call, offer = pipeline["stages"]
    reordered = await deals.client.patch(
        f"{API}/pipelines/{pipeline['id']}",
        json={"stages": [{**offer, "position": 0}, {**call, "position": 1}]},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert reordered.status_code == 200, reordered.text
    again = await deals.create_deal(admin.headers, client["id"], title="Reordered")
    assert again["stage_id"] == offer["id"]
    with sent_to_postgresql() as sent_after:
        await deals.create_deal(admin.headers, client["id"])
    if deals.app.context.engine.dialect.name == "postgresql":
        assert _sent_kinds(sent) == ["WITH", "SELECT", "WITH"], sent
        assert _sent_kinds(sent_after) == ["WITH"], sent_after
    await deals.app.settle_events()
    for deal in (moved, again):
        events = [e for e in await deals.events("deals.deal.created") if e.subject == deal["id"]]
        assert len(events) == 1 and events[0].data["stage_id"] == deal["stage_id"]
        url = f"{API}/deals/{deal['id']}/history"
        history = (await deals.client.get(url, headers=admin.headers)).json()["items"]
        assert [h["to_stage_id"] for h in history] == [deal["stage_id"]]


async def test_a_guessed_create_writes_nothing_for_a_client_one_cannot_see(
    counting_deals: Deals,
) -> None:
    """With a guess cached, a create for another agent's client or for no client at
    all is still 404 and writes nothing (the guessed statement was tried first); an
    agent's create for their own client goes in one statement."""
    deals = counting_deals
    admin = await deals.user("admin")
    one, two = await deals.user("agent"), await deals.user("agent")
    theirs = await deals.create_client(one.headers)
    mine = await deals.create_client(two.headers)
    await deals.create_deal(two.headers, mine["id"])  # the guess
    before = len(await deals.events())
    body = {"title": "Not mine", "value": "1.00", "currency": "EUR"}
    for client_id in (theirs["id"], "6f1c0e2a-1d1b-4c59-9a55-3f7c2b0e9d11"):
        with sent_to_postgresql() as sent:
            refused = await deals.client.post(
                f"{API}/deals", json={**body, "client_id": client_id}, headers=two.headers
            )
        assert refused.status_code == 404, refused.text
        if deals.app.context.engine.dialect.name == "postgresql":
            assert _sent_kinds(sent)[:2] == ["WITH", "SELECT"], sent
            await deals.create_deal(two.headers, mine["id"])  # the guess again
    listed = await deals.client.get(f"{API}/deals", headers=admin.headers)
    assert "Not mine" not in [d["title"] for d in listed.json()["items"]]
    created = await deals.events("deals.deal.created")
    assert all(e.data["title"] != "Not mine" for e in created)
    with sent_to_postgresql() as sent_ok:
        ok = await deals.create_deal(two.headers, mine["id"], title="Still fine")
    assert ok["owner_id"] == str(two.id)
    if deals.app.context.engine.dialect.name == "postgresql":
        assert _sent_kinds(sent_ok) == ["WITH"], sent_ok
        assert len(await deals.events()) == before + 3  # two creates between, then this one


async def test_a_guess_per_pipeline_and_not_with_an_idempotency_key(counting_deals: Deals) -> None:
    """A pipeline named in the body has its own guess (checked with that pipeline in
    the statement); an ``Idempotency-Key`` create, whose key's claim began the
    transaction, takes the usual path in that one transaction, guess or not."""
    deals = counting_deals
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    renewals = await deals.pipeline(admin.headers, "Renewals")
    kinds = []
    for _ in range(2):
        with sent_to_postgresql() as sent:
            deal = await deals.create_deal(admin.headers, client["id"], pipeline_id=renewals["id"])
        kinds.append(_sent_kinds(sent))
        assert deal["stage_id"] == deals.stage(renewals, "Renewal due")["id"]
    keyed = {**admin.headers, "Idempotency-Key": "guess-or-not"}
    with sent_to_postgresql() as sent_keyed:
        answer = await deals.client.post(
            f"{API}/deals",
            json={"title": "Keyed", "client_id": client["id"], "pipeline_id": renewals["id"]},
            headers=keyed,
        )
    assert answer.status_code == 201, answer.text
    if deals.app.context.engine.dialect.name == "postgresql":
        assert kinds == [["SELECT", "WITH"], ["WITH"]], kinds
        keyed_kinds = _sent_kinds(sent_keyed)
        assert keyed_kinds[0] == "BEGIN" and keyed_kinds[-1] == "COMMIT", sent_keyed
        assert not any(s.startswith("WITH crm2_guard") for s in sent_keyed), sent_keyed
    again = await deals.client.post(
        f"{API}/deals",
        json={"title": "Keyed", "client_id": client["id"], "pipeline_id": renewals["id"]},
        headers=keyed,
    )
    assert again.status_code == 201 and again.json()["id"] == answer.json()["id"]


async def test_creates_inside_a_larger_transaction_roll_back_with_it(deals: Deals) -> None:
    """A caller that writes more than the one deal (a seed, a handler) does not say
    ``whole_transaction``: with the start known, its creates still wait for its commit,
    and its rollback leaves none of them."""
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    await deals.create_deal(admin.headers, client["id"])  # the start is known now
    principal = Principal(
        id=admin.id, kind="user", roles=frozenset({"admin"}),
        permissions=frozenset({"deals:write", "deals:all_records"}),
    )  # fmt: skip
    data = DealCreate(title="Rolled back", client_id=client["id"])
    async with deals.app.context.session_factory() as session:
        for _ in range(2):
            await create_deal(session, principal, data, context=deals.app.context)
        await session.rollback()
    listed = await deals.client.get(f"{API}/deals", headers=admin.headers)
    assert [d["title"] for d in listed.json()["items"]] == ["Deal"]


async def test_a_create_in_a_closed_stage_writes_its_closing_event_in_one_transaction(
    counting_deals: Deals,
) -> None:
    """A deal created straight into a won stage: its ``won`` event (an ORM row added
    after the deal's statement) commits in one transaction with the deal."""
    deals = counting_deals
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    first = await deals.create_deal(admin.headers, client["id"])
    pipeline = await deals.client.get(
        f"{API}/pipelines/{first['pipeline_id']}", headers=admin.headers
    )
    won = next(stage for stage in pipeline.json()["stages"] if stage["kind"] == "won")
    with sent_to_postgresql() as sent:
        deal = await deals.create_deal(admin.headers, client["id"], stage_id=won["id"])
    assert deal["status"] == "won"
    if deals.app.context.engine.dialect.name == "postgresql":
        kinds = [s.split()[0].rstrip(";") for s in sent if "auth_" not in s]
        assert "BEGIN" in kinds and kinds[-1] == "COMMIT", kinds
    await deals.app.settle_events()
    types = [e.type for e in await deals.events() if e.subject == deal["id"]]
    assert types == ["deals.deal.created", "deals.deal.won"]


async def test_creates_share_one_built_insert_statement(deals: Deals) -> None:
    """PostgreSQL: the deal + stage move + event statement is built once per shape and
    reused, so a create pays neither its construction nor its cache key again."""
    from sqlalchemy import event

    engine = deals.app.context.engine.sync_engine
    if engine.dialect.name != "postgresql":
        return
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    invoked: list[object] = []

    def record(
        _conn: object, _cursor: object, statement: str, _p: object, context, *_: object
    ) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("WITH crm2_row_0"):
            invoked.append(context.invoked_statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        for title in ("One", "Two"):
            await deals.create_deal(admin.headers, client["id"], title=title)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(invoked) == 2 and invoked[0] is invoked[1]
    titles = {
        d["title"]
        for d in (await deals.client.get(f"{API}/deals", headers=admin.headers)).json()["items"]
    }
    assert {"One", "Two"} <= titles


async def test_start_query_is_built_once_per_kind_of_visibility(deals: Deals) -> None:
    """The create's one read (client visible + first open stage) is one built statement
    per kind of caller, run with new parameters; an agent's still sees only their own
    clients (another agent's is a 404)."""
    from sqlalchemy import event

    admin, agent, other = (
        await deals.user("admin"),
        await deals.user("agent"),
        await deals.user("agent"),
    )
    theirs = await deals.create_client(other.headers)
    mine = await deals.create_client(agent.headers)
    invoked: list[object] = []

    def record(
        _conn: object, _cursor: object, statement: str, _p: object, context, *_: object
    ) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT deals_pipeline.id"):
            invoked.append(context.invoked_statement)

    engine = deals.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for who, client in ((admin, theirs), (admin, mine), (agent, mine), (agent, mine)):
            await deals.create_deal(who.headers, client["id"])
        refused = await deals.client.post(
            f"{API}/deals",
            json={"title": "Not mine", "client_id": theirs["id"], "currency": "EUR"},
            headers=agent.headers,
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert refused.status_code == 404
    first, second, third, fourth, fifth = invoked[:5]
    assert first is second and third is fourth is fifth and first is not third


async def test_create_loads_no_pipeline_or_stage_objects(deals: Deals) -> None:
    """The usual create reads its start as columns: no ``Pipeline`` or ``Stage`` is built
    (their ORM loading cost more CPU than the query's round trip)."""
    from crm2_deals.models import Pipeline, Stage
    from sqlalchemy import event

    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    loaded: list[object] = []

    def record(target: object, _context: object) -> None:
        loaded.append(target)

    for model in (Pipeline, Stage):
        event.listen(model, "load", record)
    try:
        deal = await deals.create_deal(admin.headers, client["id"], title="No objects")
    finally:
        for model in (Pipeline, Stage):
            event.remove(model, "load", record)
    assert deal["title"] == "No objects" and loaded == []
