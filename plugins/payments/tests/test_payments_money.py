"""The money invariants: exact amounts, exact splits, ledger == balances under concurrency.

Each rule of the README's "Money rules" has its test here:

1. amounts round-trip exactly (10,000 random ones, exponents 0, 2, 3; 1,000 of them through
   the database, and some through the API);
2. a premium splits exactly, the remainder on the first instalment;
3. commission basis points round half up; a fixed commission is earned once paid in full;
4. one Idempotency-Key → one row, however many POSTs race;
5. paid never exceeds due, refunds never exceed what was paid, and the ledger
   (allocations) equals the payment's sums and the balances, under 100 racing requests.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from crm2_payments.models import Allocation, Payment
from crm2_payments.service.money import MAX_MINOR, basis_points_of, commission_due, split, text
from payments_kit import API, Payments, key
from sqlalchemy import func, insert, select

from crm2_core.api import from_minor, new_id, to_minor, utcnow

CURRENCIES = {"JPY": 0, "EUR": 2, "KWD": 3}


async def test_10000_random_amounts_round_trip_exactly(payments: Payments) -> None:
    rng = random.Random(12)
    owner = (await payments.user("agent")).id
    rows: list[dict[str, Any]] = []
    expected: dict[Any, str] = {}
    for i in range(10_000):
        currency = list(CURRENCIES)[i % 3]
        places = CURRENCIES[currency]
        minor = rng.choice([1, rng.randrange(1, 1000), rng.randrange(1, MAX_MINOR + 1)])
        wire = text(minor, currency)
        # the wire string parses back to the same minor units, with the currency's places
        assert to_minor(Decimal(wire), currency) == minor
        assert len(wire.partition(".")[2]) == places
        if i % 10:
            continue  # every tenth goes through the database as well
        row_id = new_id()
        expected[row_id] = wire
        now = utcnow()
        rows.append({"id": row_id, "direction": "incoming", "amount_minor": minor,
                     "currency": currency, "paid_minor": 0, "refunded_minor": 0,
                     "status": "planned", "method": "", "payer": "", "payee": "",
                     "reference": "", "note": "", "insurer": "", "product": "",
                     "provider": "manual", "owner_id": owner, "created_at": now,
                     "updated_at": now, "version": 1})  # fmt: skip
    async with payments.app.context.session_factory() as session:
        await session.execute(insert(Payment), rows)
        await session.commit()
        stored = await session.execute(select(Payment.id, Payment.amount_minor, Payment.currency))
        back = {i: text(m, c) for i, m, c in stored}
    assert back == expected
    # and through the API: the decimal string sent is the one read
    agent = await payments.user("manager")
    for currency, amount in (("JPY", "123456789012345"), ("EUR", "0.01"), ("KWD", "98765.432")):
        made = await payments.create(agent, amount=amount, currency=currency)
        assert made["amount"] == amount


def test_text_is_the_decimal_formatting_it_replaced() -> None:
    """``text`` does integer arithmetic; it must write what ``from_minor`` + ``"f"`` wrote."""
    rng = random.Random(7)
    edges = [0, 1, -1, 9, -9, 10, 99, 100, 101, 999, 1000, -1000, MAX_MINOR, 2**63 - 1, -(2**63)]
    values = edges + [rng.randrange(-(2**63), 2**63) >> rng.randrange(64) for _ in range(10_000)]
    for currency in ("JPY", "EUR", "KWD", "CLF"):  # exponents 0, 2, 3, 4
        for value in values:
            assert text(value, currency) == format(from_minor(value, currency), "f")
    assert (text(-5, "EUR"), text(-1234567, "KWD"), text(0, "CLF")) == (
        "-0.05",
        "-1234.567",
        "0.0000",
    )


def test_premiums_split_exactly_with_the_remainder_first() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        total, parts = rng.randrange(0, 10**12), rng.choice([1, 2, 4, 12])
        shares = split(total, parts)
        assert sum(shares) == total and len(shares) == parts
        assert shares[0] - shares[-1] == total % parts and len(set(shares[1:])) <= 1
    assert split(100_00, 12) == [8_37, *[8_33] * 11]


def test_commission_rounding() -> None:
    assert basis_points_of(1_00, 1250) == 13  # 12.5 cents → 13 (half up)
    assert basis_points_of(99, 1000) == 10  # 9.9 → 10
    assert basis_points_of(94, 1000) == 9
    assert commission_due(50_00, 100_00, None, 10_00) == 0  # fixed: only when paid in full
    assert commission_due(100_00, 100_00, None, 10_00) == 10_00
    assert from_minor(basis_points_of(123_45, 1500), "EUR") == Decimal("18.52")


async def test_50_racing_posts_with_one_idempotency_key_make_one_row(payments: Payments) -> None:
    agent = await payments.user("agent")
    headers = {**agent.headers, "Idempotency-Key": "same-key-50"}
    body = {"amount": "10.00", "currency": "EUR"}
    answers = await asyncio.gather(
        *(payments.client.post(f"{API}/payments", json=body, headers=headers) for _ in range(50))
    )
    codes = [a.status_code for a in answers]
    assert set(codes) <= {201, 409}, codes
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    async with payments.app.context.session_factory() as session:
        assert (await session.execute(select(func.count()).select_from(Payment))).scalar_one() == 1


async def test_100_racing_allocations_and_refunds_keep_the_ledger_exact(payments: Payments) -> None:
    agent = await payments.user("agent")
    made = [await payments.create(agent, amount=a) for a in ("100.00", "55.55", "7.00")]
    rng = random.Random(5)
    ops = [
        (rng.choice(made)["id"], rng.choice(["payment", "payment", "refund"]),
         f"{rng.randrange(1, 3000) / 100:.2f}")
        for _ in range(100)
    ]  # fmt: skip
    answers = await asyncio.gather(*(payments.move(agent, p, k, a) for p, k, a in ops))
    codes = sorted({a.status_code for a in answers})
    assert set(codes) <= {201, 409}, [a.text for a in answers if a.status_code not in (201, 409)]
    assert 201 in codes
    async with payments.app.context.session_factory() as session:
        for payment in (await session.execute(select(Payment))).scalars():
            sums = dict(
                (await session.execute(
                    select(Allocation.kind, func.sum(Allocation.amount_minor))
                    .where(Allocation.payment_id == payment.id).group_by(Allocation.kind)
                )).all()
            )  # fmt: skip
            assert payment.paid_minor == sums.get("payment", 0) - sums.get("reversal", 0)
            assert payment.refunded_minor == sums.get("refund", 0)
            assert 0 <= payment.paid_minor - payment.refunded_minor <= payment.amount_minor
            assert payment.refunded_minor <= payment.paid_minor
    listed = (await payments.client.get(f"{API}/payments", headers=agent.headers)).json()["items"]
    balance = (await payments.client.get(f"{API}/balances", headers=agent.headers)).json()
    (eur,) = balance["balances"]
    assert Decimal(eur["paid"]) == sum(Decimal(p["paid"]) for p in listed)
    assert Decimal(eur["due"]) == sum(Decimal(p["outstanding"]) for p in listed)
    assert Decimal(eur["refunded"]) == sum(Decimal(p["refunded"]) for p in listed)


async def test_over_payment_and_over_refund_are_409_and_change_nothing(payments: Payments) -> None:
    agent = await payments.user("agent")
    p = await payments.create(agent, amount="10.00")
    assert (await payments.move(agent, p["id"], "refund", "0.01")).status_code == 409
    assert (await payments.move(agent, p["id"], "payment", "10.01")).status_code == 409
    part = await payments.move(agent, p["id"], "payment", "4.00")
    assert part.status_code == 201 and part.json()["payment"]["status"] == "partially_paid"
    assert (await payments.move(agent, p["id"], "payment", "6.01")).status_code == 409
    assert (await payments.move(agent, p["id"], "refund", "4.01")).status_code == 409
    assert (await payments.move(agent, p["id"], "payment", "5", currency="USD")).status_code == 422
    full = await payments.move(agent, p["id"], "payment", "6.00")
    assert full.json()["payment"]["status"] == "paid"
    back = await payments.move(agent, p["id"], "refund", "10.00")
    assert back.json()["payment"]["status"] == "refunded"
    assert back.json()["payment"]["paid"] == "0.00"
    no_key = await payments.client.post(
        f"{API}/payments/{p['id']}/allocations",
        json={"amount": "1.00", "currency": "EUR"},
        headers=agent.headers,
    )
    assert no_key.status_code == 400
    ledger = await payments.client.get(
        f"{API}/payments/{p['id']}/allocations", headers=agent.headers
    )
    assert [(a["kind"], a["amount"]) for a in ledger.json()] == [
        ("payment", "4.00"), ("payment", "6.00"), ("refund", "10.00")]  # fmt: skip
    types = [e.type for e in await payments.events()]
    assert (
        types.count("payments.payment.paid") == 2 and types.count("payments.payment.refunded") == 1
    )


async def test_balances_add_up_past_the_largest_single_amount(payments: Payments) -> None:
    """Two JPY payments of the largest amount a request may carry sum to 16 digits: the
    balances answered 500 (the wire's Amount refuses more than 15 on parsing)."""
    agent = await payments.user("agent")
    for _ in range(2):
        await payments.create(agent, amount="999999999999999", currency="JPY")
    answer = await payments.client.get(f"{API}/balances", headers=agent.headers)
    assert answer.status_code == 200, answer.text
    (jpy,) = answer.json()["balances"]
    assert (jpy["currency"], jpy["due"], jpy["paid"]) == ("JPY", "1999999999999998", "0")


async def test_a_refund_may_carry_its_receipts_external_id(payments: Payments) -> None:
    """A provider refunds under the id of the charge it pays back: a refund with a receipt's
    external_id was refused (409, or "known" with the receipt) and never booked. Identity is
    (provider, kind, external_id): the refund books once, a replay of either moves nothing."""
    agent = await payments.user("agent")
    made = await payments.create(agent, amount="100.00")
    paid = await payments.move(agent, made["id"], "payment", "50.00", provider="acme",
                               external_id="tx-1")  # fmt: skip
    assert paid.status_code == 201, paid.text
    refund = await payments.move(agent, made["id"], "refund", "20.00", provider="acme",
                                 external_id="tx-1")  # fmt: skip
    assert refund.status_code == 201, refund.text
    for kind, amount in (("payment", "50.00"), ("refund", "20.00")):
        replay = await payments.move(agent, made["id"], kind, amount, provider="acme",
                                     external_id="tx-1")  # fmt: skip
        assert replay.status_code == 200, replay.text
    after = (await payments.get(agent, made["id"])).json()
    assert (after["paid"], after["refunded"]) == ("30.00", "20.00")  # paid: net of refunds


async def test_balances_of_many_of_the_largest_payments_are_exact(payments: Payments) -> None:
    """10,000 payments of the largest amount (10^15 minor units) sum past 2^63: SQLite's SUM
    raised "integer overflow" and the balances answered 500."""
    agent = await payments.user("agent")
    now, count = utcnow(), 10_000
    rows = [{"id": new_id(), "direction": "incoming", "amount_minor": MAX_MINOR,
             "paid_minor": 0 if i % 10 else MAX_MINOR // 2, "refunded_minor": 0,
             "currency": "EUR", "status": "due", "provider": "manual", "note": "",
             "owner_id": agent.id,
             "created_at": now, "updated_at": now, "version": 1}
            for i in range(count)]  # fmt: skip
    async with payments.app.context.session_factory() as session:
        await session.execute(insert(Payment), rows)
        await session.commit()
    answer = await payments.client.get(f"{API}/balances", headers=agent.headers)
    assert answer.status_code == 200, answer.text[:300]
    (eur,) = answer.json()["balances"]
    paid = (count // 10) * (MAX_MINOR // 2)
    assert eur["paid"] == text(paid, "EUR")
    assert eur["due"] == text(count * MAX_MINOR - paid, "EUR")


async def test_amounts_in_digits_other_than_ascii_are_422_and_change_nothing(
    payments: Payments,
) -> None:
    """The document's pattern is ``[0-9]``; Python's ``\\d`` also took full-width and
    Arabic-Indic digits (full-width "12" became a payment of 12.00, and a receipt of it)."""
    agent = await payments.user("agent")
    made = await payments.create(agent, amount="10.00")
    for amount in ("\uff11\uff12", "\u0661\u0662.\u0665\u0660", "1.\u0665", "\u0967"):
        created = await payments.client.post(
            f"{API}/payments",
            json={"amount": amount, "currency": "EUR"},
            headers={**agent.headers, **key()},
        )
        assert created.status_code == 422, (amount, created.text)
        assert created.headers["content-type"].startswith("application/problem+json")
        moved = await payments.move(agent, made["id"], "payment", amount)
        assert moved.status_code == 422, (amount, moved.text)
    listed = await payments.client.get(f"{API}/payments", headers=agent.headers)
    assert [p["id"] for p in listed.json()["items"]] == [made["id"]]
    assert (await payments.get(agent, made["id"])).json()["paid"] == "0.00"


async def test_money_dated_far_in_the_future_is_422_naming_received_at(
    payments: Payments,
) -> None:
    """A receipt dated 9999-12-31T23:59:59-10:00 was stored as 9999-12-31T23:59:59.999998Z
    (the end of time): money never comes from the future. A day ahead of the payments clock
    is the most a receipt or refund may be dated; an hour ahead (a clock a little fast) and
    the past stay fine."""
    manager = await payments.user("manager")
    made = await payments.create(manager, amount="40.00")
    soon = utcnow() + timedelta(days=2)
    for when in ("9999-12-31T23:59:59-10:00", soon.isoformat()):
        for kind in ("payment", "refund"):
            answer = await payments.move(manager, made["id"], kind, "5.00", received_at=when)
            assert answer.status_code == 422, answer.text
            problem = answer.json()
            assert problem["type"] == "urn:crm2:problem:payments-invalid-received-at"
            assert "received_at" in problem["detail"]
            assert problem["errors"][0]["loc"] == ["body", "received_at"]
    got = (await payments.get(manager, made["id"])).json()
    assert (got["paid"], got["version"]) == ("0.00", made["version"])
    for when in ((utcnow() + timedelta(hours=1)).isoformat(), "2020-01-01T00:00:00+14:00"):
        ok = await payments.move(manager, made["id"], "payment", "5.00", received_at=when)
        assert ok.status_code == 201, ok.text
    back = await payments.move(manager, made["id"], "refund", "1.00",
                               received_at="0001-01-02T00:00:00Z")  # fmt: skip
    assert back.status_code == 201, back.text
