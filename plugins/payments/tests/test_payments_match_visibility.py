"""A statement line is matched by hand only to a payment the caller can see.

``payments:reconcile`` without ``payments:all_records`` (a custom role): ``manual_match``
read the payment by id with no visibility rule, so a clerk booked money on, and learnt
the existence of, another user's payment. It is 404 now, and nothing is booked.

``unmatch`` read the line's payment with no rule either (a clerk took back a receipt on
a payment they cannot see), and an upload's automatic matching booked the clerk's lines
on anyone's payments (and the answer named them): both keep to the uploader's payments.
"""

from __future__ import annotations

from payments_kit import API, Payments, User, key
from test_payments_reconciliation import statement, upload


async def _clerk(p: Payments, admin: User) -> User:
    """``payments:reconcile`` without ``payments:all_records``."""
    grants = ["payments:read", "payments:write", "payments:reconcile"]
    return await p.role_user(admin, "clerk", grants)


async def test_a_clerk_matches_a_line_only_to_a_payment_they_can_see(
    payments: Payments,
) -> None:
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    clerk = await _clerk(p, admin)
    theirs = await p.create(agent, amount="7.00")
    own = await p.create(clerk, amount="7.00")
    result = await upload(p, clerk.headers, statement("2026-01-01;5,00;EUR;zz;Y"))
    lines = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=clerk.headers)
    (line,) = lines.json()["items"]
    url = f"{API}/statement-lines/{line['id']}/match"
    refused = await p.client.post(
        url, json={"payment_id": theirs["id"]}, headers={**clerk.headers, **key()}
    )
    assert refused.status_code == 404, refused.text
    assert refused.json()["type"].endswith("payments-payment-not-found")
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await p.get(agent, theirs["id"])).json()["paid"] == "0.00"
    again = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=clerk.headers)
    assert again.json()["items"][0]["status"] == "unmatched"
    matched = await p.client.post(
        url, json={"payment_id": own["id"]}, headers={**clerk.headers, **key()}
    )
    assert matched.status_code == 200, matched.text
    assert (await p.get(clerk, own["id"])).json()["paid"] == "5.00"


async def test_a_clerk_cannot_unmatch_a_line_matched_to_a_payment_they_cannot_see(
    payments: Payments,
) -> None:
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    clerk = await _clerk(p, admin)
    theirs = await p.create(agent, amount="7.00", reference="AGENT-1")
    result = await upload(p, admin.headers, statement("2026-01-01;7,00;EUR;AGENT-1;Y"))
    assert result["matched"] == 1
    lines = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=clerk.headers)
    (line,) = lines.json()["items"]
    refused = await p.client.post(
        f"{API}/statement-lines/{line['id']}/unmatch", headers={**clerk.headers, **key()}
    )
    assert refused.status_code == 404, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("payments-payment-not-found")
    kept = (await p.get(agent, theirs["id"])).json()
    assert (kept["paid"], kept["version"]) == ("7.00", theirs["version"] + 1)
    again = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=admin.headers)
    (still,) = again.json()["items"]
    assert (still["status"], still["version"]) == ("matched", line["version"])
    ledger = await p.client.get(f"{API}/payments/{theirs['id']}/allocations", headers=agent.headers)
    assert [a["kind"] for a in ledger.json()] == ["payment"]


async def test_a_clerks_upload_matches_only_payments_they_can_see(payments: Payments) -> None:
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    clerk = await _clerk(p, admin)
    by_ext = await p.create(agent, amount="12.00", provider="bank", external_id="EXT-9")
    by_ref = await p.create(agent, amount="8.00", reference="AGENT-2")
    by_amount = await p.create(agent, amount="33.10", due_date="2026-11-30")
    receipt = await p.create(agent, amount="50.00")
    booked = await p.move(agent, receipt["id"], "payment", "50.00", external_id="RCPT-1")
    assert booked.status_code == 201, booked.text
    content = statement(
        "2026-12-01;12,00;EUR;EXT-9;A",
        "2026-12-01;8,00;EUR;AGENT-2;B",
        "2026-12-01;33,10;EUR;;C",
        "2026-12-01;50,00;EUR;RCPT-1;D",
    )
    result = await upload(p, clerk.headers, content)
    assert (result["matched"], result["ambiguous"], result["unmatched"]) == (0, 0, 4), result
    lines = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=clerk.headers)
    assert {line["payment_id"] for line in lines.json()["items"]} == {None}
    for made in (by_ext, by_ref, by_amount):
        assert (await p.get(agent, made["id"])).json()["paid"] == "0.00"
    mine = await p.create(clerk, amount="33.10", due_date="2026-11-30")
    second = await upload(p, clerk.headers, statement("2026-12-02;33,10;EUR;;E"))
    assert second["matched"] == 1, second
    assert (await p.get(clerk, mine["id"])).json()["paid"] == "33.10"
    assert (await p.get(agent, by_amount["id"])).json()["paid"] == "0.00"


async def test_a_clerk_sees_the_lines_but_not_the_payments_of_others(payments: Payments) -> None:
    """Statements are the firm's, shared by every ``payments:reconcile`` holder (a clerk
    matches by hand the lines an admin's upload left over): the lines stay readable, but
    the ids of a payment the caller cannot see (and of its receipt) are null."""
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    clerk = await _clerk(p, admin)
    await p.create(agent, amount="7.00", reference="AGENT-7")
    mine = await p.create(clerk, amount="9.00", reference="CLERK-9")
    content = statement("2026-01-01;7,00;EUR;AGENT-7;Y", "2026-01-02;9,00;EUR;CLERK-9;Z")
    result = await upload(p, admin.headers, content)
    assert result["matched"] == 2, result
    url = f"{API}/statements/{result['id']}/lines"
    seen = {
        line["reference"]: line
        for line in (await p.client.get(url, headers=clerk.headers)).json()["items"]
    }
    assert seen["AGENT-7"]["status"] == "matched"
    assert (seen["AGENT-7"]["payment_id"], seen["AGENT-7"]["allocation_id"]) == (None, None)
    assert seen["CLERK-9"]["payment_id"] == mine["id"] and seen["CLERK-9"]["allocation_id"]
    by_admin = (await p.client.get(url, headers=admin.headers)).json()["items"]
    assert all(line["payment_id"] and line["allocation_id"] for line in by_admin)


async def test_statement_counts_are_shared_and_agree_with_the_lines_a_clerk_reads(
    payments: Payments,
) -> None:
    """Decided: a statement's counts are the firm's, like its lines. Every reconcile holder
    reads every line's ``status`` (a clerk works the lines left open, and matching a line
    matched already is 409 whoever's payment it is), so a count tells nothing the lines do
    not; what stays hidden is which payment (and receipt) a line was matched to."""
    p = payments
    admin, agent = await p.user("admin"), await p.user("agent")
    clerk = await _clerk(p, admin)
    await p.create(agent, amount="7.00", reference="AGENT-8")
    await p.create(clerk, amount="9.00", reference="CLERK-8")
    content = statement(
        "2026-01-01;7,00;EUR;AGENT-8;Y", "2026-01-02;9,00;EUR;CLERK-8;Z", "2026-01-03;1,00;EUR;;Q"
    )
    result = await upload(p, admin.headers, content)
    url = f"{API}/statements/{result['id']}"
    lines = (await p.client.get(f"{url}/lines", headers=clerk.headers)).json()["items"]
    by_status = {s: sum(line["status"] == s for line in lines) for s in result if s in
                 ("matched", "unmatched", "ambiguous")}  # fmt: skip
    assert by_status == {"matched": 2, "unmatched": 1, "ambiguous": 0}
    for who in (clerk, admin):
        one = (await p.client.get(url, headers=who.headers)).json()
        listed = (await p.client.get(f"{API}/statements", headers=who.headers)).json()["items"]
        for shown in (one, *[s for s in listed if s["id"] == result["id"]]):
            assert {s: shown[s] for s in by_status} == by_status
    assert [line["payment_id"] is None for line in lines].count(True) == 2
