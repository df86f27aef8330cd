"""Provider webhooks: Standard Webhooks signatures, rotation, replay applied once, 401 changes
nothing. Signed here with the scheme's own recipe, as a provider would."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import pytest
from crm2_payments.models import WebhookDelivery
from crm2_payments.service.webhooks import sign
from payments_kit import API, Payments
from sqlalchemy import func, select

from crm2_core.api import ConfigurationError

OLD_KEY, NEW_KEY = b"old-secret-key-0123456789abcdef!", b"new-secret-key-0123456789abcdef!"
SECRETS = ",".join(f"acme:whsec_{base64.b64encode(k).decode()}" for k in (NEW_KEY, OLD_KEY))


@pytest.fixture
async def hooks(crm2_app_factory: Any) -> Payments:
    app = await crm2_app_factory(
        plugins=["payments"], plugin_settings={"payments": {"webhook_secrets": SECRETS}}
    )
    return Payments(app)


def signed(body: bytes, key: bytes = NEW_KEY, *, webhook_id: str | None = None,
           at: int | None = None) -> dict[str, str]:  # fmt: skip
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(at if at is not None else int(time.time()))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,bm90LXRoaXMtb25l {sign(key, webhook_id, stamp, body)}",
        "content-type": "application/json",
    }


async def test_signed_webhooks_apply_once_and_bad_ones_change_nothing(hooks: Payments) -> None:
    agent = await hooks.user("agent")
    p = await hooks.create(agent, amount="40.00", provider="acme", external_id="inv_9")
    url = f"{API}/webhooks/acme"
    body = json.dumps({"type": "payment.succeeded", "data": {
        "transaction_id": "tx_1", "amount": "15.00", "currency": "EUR",
        "payment_external_id": "inv_9"}}).encode()  # fmt: skip

    for bad in (
        signed(body, b"wrong-key-wrong-key-wrong-key-00"),
        signed(body, at=int(time.time()) - 301),  # outside the 300 s window
        {**signed(body), "webhook-signature": ""},
        signed(body + b" "),  # the body changed after signing
        # timestamps int() cannot take, or not as a time: "²" passes str.isdigit()
        *(
            {**signed(body), "webhook-timestamp": stamp}
            for stamp in ("1" + "0" * 400, "9" * 5000, b"\xb2")
        ),
    ):
        answer = await hooks.client.post(url, content=body, headers=bad)
        assert answer.status_code == 401, answer.text
    unknown = await hooks.client.post(f"{API}/webhooks/nobody", content=body, headers=signed(body))
    assert unknown.status_code == 404
    assert (await hooks.get(agent, p["id"])).json()["paid"] == "0.00"

    # the same webhook five times at once: applied once
    headers = signed(body, OLD_KEY, webhook_id="msg_replayed")  # the older secret still works
    answers = await asyncio.gather(
        *(hooks.client.post(url, content=body, headers=headers) for _ in range(5))
    )
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    assert sorted(a.json()["applied"] for a in answers) == [False] * 4 + [True]
    after = (await hooks.get(agent, p["id"])).json()
    assert after["paid"] == "15.00" and after["status"] == "partially_paid"
    # the same transaction under another webhook id moves nothing either
    again = await hooks.client.post(url, content=body, headers=signed(body))
    assert again.status_code == 200 and again.json()["result"] == "transaction known"
    refund = json.dumps({"type": "payment.refunded", "data": {
        "transaction_id": "rf_1", "amount": "5.00", "currency": "EUR",
        "payment_id": p["id"]}}).encode()  # fmt: skip
    done = await hooks.client.post(url, content=refund, headers=signed(refund))
    assert done.status_code == 200 and done.json()["applied"] is True
    assert (await hooks.get(agent, p["id"])).json()["refunded"] == "5.00"
    async with hooks.app.context.session_factory() as session:
        count = select(func.count()).select_from(WebhookDelivery)
        assert (await session.execute(count)).scalar_one() == 3


async def test_a_deeply_nested_signed_body_is_a_400_saying_so(hooks: Payments) -> None:
    """json.loads raises RecursionError (not a ValueError) on deep nesting: it was a 500.
    The core's body gate answers it for every route (``json-too-deep``)."""
    body = b"[" * 100_000 + b"]" * 100_000
    answer = await hooks.client.post(f"{API}/webhooks/acme", content=body, headers=signed(body))
    assert answer.status_code == 400, answer.text[:300]
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "urn:crm2:problem:json-too-deep"
    async with hooks.app.context.session_factory() as session:
        count = select(func.count()).select_from(WebhookDelivery)
        assert (await session.execute(count)).scalar_one() == 0


async def test_other_event_types_and_extra_fields_are_taken(hooks: Payments) -> None:
    """A provider sends event types of its own, with data of their own shape, and adds fields
    to the ones we read: both were 422 (data's unknown fields forbidden, its payment fields
    required for every type), so the provider kept retrying what the README says is
    recorded and ignored, and a receipt with a 'fee' was never booked."""
    agent = await hooks.user("agent")
    p = await hooks.create(agent, amount="40.00", provider="acme", external_id="inv_x")
    url = f"{API}/webhooks/acme"
    other = json.dumps({"type": "customer.created", "data": {"id": "cus_1"}}).encode()
    answer = await hooks.client.post(url, content=other, headers=signed(other))
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "ignored: type customer.created"
    paid = json.dumps({"type": "payment.succeeded", "data": {
        "transaction_id": "tx_fee", "amount": "15.00", "currency": "EUR",
        "payment_external_id": "inv_x", "fee": "0.30", "livemode": True}}).encode()  # fmt: skip
    answer = await hooks.client.post(url, content=paid, headers=signed(paid))
    assert answer.status_code == 200, answer.text
    assert (await hooks.get(agent, p["id"])).json()["paid"] == "15.00"
    broken = json.dumps({"type": "payment.succeeded", "data": {"transaction_id": "tx_2"}})
    answer = await hooks.client.post(url, content=broken.encode(), headers=signed(broken.encode()))
    assert answer.status_code == 422, answer.text


async def _paid(hooks: Payments, **data: str) -> dict[str, Any]:
    paid = {"transaction_id": f"tx_{uuid.uuid4().hex}", "amount": "10.00", **data}
    body = json.dumps({"type": "payment.succeeded", "data": paid}).encode()
    answer = await hooks.client.post(f"{API}/webhooks/acme", content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_a_webhook_finds_its_payment_by_reference_currency_and_provider(
    hooks: Payments,
) -> None:
    """By reference the first open payment of that reference was taken whatever its currency
    and provider: one reference on payments in two currencies (or of two providers) found
    none, and a payment of another provider was booked on by this one."""
    agent = await hooks.user("agent")
    eur = await hooks.create(agent, amount="40.00", reference="INV-1")
    usd = await hooks.create(agent, amount="40.00", currency="USD", reference="INV-1")
    assert (await _paid(hooks, currency="USD", reference="INV-1"))["result"].startswith("payment ")
    assert (await hooks.get(agent, usd["id"])).json()["paid"] == "10.00"
    assert (await hooks.get(agent, eur["id"])).json()["paid"] == "0.00"

    mine = await hooks.create(agent, amount="40.00", reference="INV-2", provider="acme")
    theirs = await hooks.create(agent, amount="40.00", reference="INV-2", provider="other")
    assert (await _paid(hooks, currency="EUR", reference="INV-2"))["result"].startswith("payment ")
    assert (await hooks.get(agent, mine["id"])).json()["paid"] == "10.00"

    only_theirs = await hooks.create(agent, amount="40.00", reference="INV-3", provider="other")
    for data, reason in (
        ({"currency": "EUR", "reference": "INV-3"}, "provider other"),
        ({"currency": "GBP", "reference": "INV-1"}, "in EUR, USD, not GBP"),
        ({"currency": "EUR", "payment_id": theirs["id"]}, "of provider 'other'"),
    ):
        result = (await _paid(hooks, **data))["result"]
        assert result.startswith("rejected: ") and reason in result, result
    for made in (theirs, only_theirs):
        assert (await hooks.get(agent, made["id"])).json()["paid"] == "0.00"


async def test_a_refund_by_reference_finds_the_paid_payment(hooks: Payments) -> None:
    """By reference only open payments were looked for: a payment paid in full is not open,
    so its provider's refund was recorded as ignored and never booked."""
    agent = await hooks.user("agent")
    made = await hooks.create(agent, amount="10.00", reference="INV-7", provider="acme")
    assert (await _paid(hooks, currency="EUR", reference="INV-7"))["result"].startswith("payment ")
    assert (await hooks.get(agent, made["id"])).json()["status"] == "paid"
    refund = {"transaction_id": "rf_7", "amount": "4.00", "currency": "EUR", "reference": "INV-7"}
    body = json.dumps({"type": "payment.refunded", "data": refund}).encode()
    answer = await hooks.client.post(f"{API}/webhooks/acme", content=body, headers=signed(body))
    assert answer.status_code == 200 and answer.json()["result"].startswith("refund "), answer.text
    got = (await hooks.get(agent, made["id"])).json()
    assert (got["refunded"], got["status"]) == ("4.00", "partially_refunded")


async def test_a_refund_under_its_receipts_transaction_id_is_booked(hooks: Payments) -> None:
    """Providers refund under the id of the charge paid back: the refund was taken for that
    receipt ("transaction known") and never booked. A replay of either still moves nothing."""
    agent = await hooks.user("agent")
    made = await hooks.create(agent, amount="30.00", provider="acme", external_id="inv_5")
    data = {"transaction_id": "ch_5", "currency": "EUR", "payment_external_id": "inv_5"}
    paid = json.dumps({"type": "payment.succeeded", "data": {**data, "amount": "30.00"}}).encode()
    refund = json.dumps({"type": "payment.refunded", "data": {**data, "amount": "12.00"}}).encode()
    url = f"{API}/webhooks/acme"
    for body, kind in ((paid, "payment "), (refund, "refund ")):
        answer = await hooks.client.post(url, content=body, headers=signed(body))
        assert answer.status_code == 200 and answer.json()["result"].startswith(kind), answer.text
    for body in (paid, refund):
        again = await hooks.client.post(url, content=body, headers=signed(body))
        assert again.json()["result"] == "transaction known", again.text
    got = (await hooks.get(agent, made["id"])).json()
    assert (got["paid"], got["refunded"]) == ("18.00", "12.00"), got  # paid: net


@pytest.mark.parametrize(
    "entry",
    ["Acme:whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3Qtc2hvdw==", "acme:c2VjcmV0 LXRoYXQ", "acme"],
)
async def test_a_webhook_secret_no_webhook_could_use_stops_start_up(
    crm2_app_factory: Any, entry: str
) -> None:
    """A provider name the route cannot take (``Acme``) or a secret that is not base64 was
    skipped without a word: the provider's webhooks answered 404 (or 401) for good. Start-up
    stops naming the setting and the entry, never the secret."""
    good = f"bank:whsec_{base64.b64encode(NEW_KEY).decode()}"
    with pytest.raises(ConfigurationError) as refused:
        await crm2_app_factory(
            plugins=["payments"],
            plugin_settings={"payments": {"webhook_secrets": f"{good},{entry}"}},
        )
    message = str(refused.value)
    assert "CRM2_PAYMENTS_WEBHOOK_SECRETS" in message and "entry 2" in message, message
    assert "c2VjcmV0" not in message and base64.b64encode(NEW_KEY).decode() not in message


async def test_partial_refunds_of_one_transaction_are_told_apart_by_their_refund_id(
    hooks: Payments,
) -> None:
    """Providers refund a charge in parts, each event under the charge's transaction id and a
    refund id of its own: the second partial refund was answered "transaction known" and never
    booked. A replay of either (another webhook id) still books nothing; without a refund id
    one transaction is one refund, and another amount under it is rejected, saying why."""
    agent = await hooks.user("agent")
    made = await hooks.create(agent, amount="30.00", provider="acme", external_id="inv_p")
    data = {"transaction_id": "ch_p", "currency": "EUR", "payment_external_id": "inv_p"}
    url = f"{API}/webhooks/acme"

    async def send(type_: str, **extra: str) -> str:
        body = json.dumps({"type": type_, "data": {**data, **extra}}).encode()
        answer = await hooks.client.post(url, content=body, headers=signed(body))
        assert answer.status_code == 200, answer.text
        result: str = answer.json()["result"]
        return result

    assert (await send("payment.succeeded", amount="30.00")).startswith("payment ")
    assert (await send("payment.refunded", amount="5.00", refund_id="re_1")).startswith("refund ")
    assert (await send("payment.refunded", amount="7.00", refund_id="re_2")).startswith("refund ")
    for refund_id, amount in (("re_1", "5.00"), ("re_2", "7.00")):
        again = await send("payment.refunded", amount=amount, refund_id=refund_id)
        assert again == "transaction known", again
    got = (await hooks.get(agent, made["id"])).json()
    assert (got["paid"], got["refunded"], got["status"]) == ("18.00", "12.00",
        "partially_refunded"), got  # fmt: skip

    # no refund id (or an empty one): the transaction is the refund; another amount under
    # it is no replay
    assert (await send("payment.refunded", amount="2.00", refund_id="")).startswith("refund ")
    other = await send("payment.refunded", amount="3.00")
    assert other.startswith("rejected: ") and "refund_id" in other, other
    assert await send("payment.refunded", amount="2.00") == "transaction known"
    assert (await hooks.get(agent, made["id"])).json()["refunded"] == "14.00"
