"""Reconciliation and the overdue job.

A statement CSV (semicolons, decimal comma, BOM) is matched by external id,
then reference, then amount and date; a re-upload adds no lines; lines are
matched and unmatched by hand. The overdue job marks a payment once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from crm2_payments.service.overdue import mark_overdue
from payments_kit import API, Payments, key

from crm2_core.api import utcnow


def statement(*lines: str) -> bytes:
    return ("\ufeffDate;Amount;Currency;Reference;Counterparty\r\n" + "\r\n".join(lines)).encode()


async def upload(p: Payments, headers: dict[str, str], content: bytes) -> dict[str, object]:
    files = {"file": ("bank.csv", content, "text/csv")}
    answer = await p.client.post(f"{API}/statements", files=files, headers={**headers, **key()})
    assert answer.status_code == 201, answer.text
    result: dict[str, object] = answer.json()
    return result


async def test_a_statement_is_matched_and_a_reupload_is_409_naming_it(payments: Payments) -> None:
    manager = await payments.user("manager")
    by_ext = await payments.create(manager, amount="1250.00", provider="bank", external_id="E-77")
    by_ref = await payments.create(manager, amount="80.00", reference="INV-2026-1")
    by_amount = await payments.create(manager, amount="33.10", due_date="2026-11-30")
    twin_a = await payments.create(manager, amount="19.99", due_date="2026-12-01")
    await payments.create(manager, amount="19.99", due_date="2026-12-02")
    content = statement(
        "2026-12-01;1.250,00;EUR;E-77;Acme GmbH",
        "01.12.2026;80,00;eur;INV-2026-1;Bob",
        "02.12.2026;33,10;EUR;no idea;Carla",
        "2026-12-01;19,99;EUR;;Dan",
        "2026-12-01;5,00;EUR;;Nobody",
    )
    first = await upload(payments, manager.headers, content)
    assert (first["lines"], first["duplicates"]) == (5, 0)
    assert (first["matched"], first["ambiguous"], first["unmatched"]) == (3, 1, 1)
    for made, paid in ((by_ext, "1250.00"), (by_ref, "80.00"), (by_amount, "33.10")):
        got = (await payments.get(manager, made["id"])).json()
        assert got["paid"] == paid and got["status"] == "paid"
    files = {"file": ("bank.csv", content, "text/csv")}
    again = await payments.client.post(
        f"{API}/statements", files=files, headers={**manager.headers, **key()}
    )
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"] == "urn:crm2:problem:payments-statement-duplicate"
    assert again.json()["statement_id"] == first["id"]
    listed = await payments.client.get(f"{API}/statements", headers=manager.headers)
    assert [s["id"] for s in listed.json()["items"]] == [first["id"]]
    # a file with one new line beside the known ones adds that line only
    grown = await upload(payments, manager.headers, content + b"\r\n2026-12-03;7,00;EUR;;Eve")
    assert (grown["lines"], grown["duplicates"]) == (1, 5)

    lines = await payments.client.get(
        f"{API}/statements/{first['id']}/lines", params={"status": "ambiguous"},
        headers=manager.headers,
    )  # fmt: skip
    (line,) = lines.json()["items"]
    match = await payments.client.post(
        f"{API}/statement-lines/{line['id']}/match", json={"payment_id": twin_a["id"]},
        headers={**manager.headers, **key()},
    )  # fmt: skip
    assert match.status_code == 200, match.text
    assert match.json()["status"] == "matched" and match.json()["matched_by"] == "manual"
    assert (await payments.get(manager, twin_a["id"])).json()["status"] == "paid"
    twice = await payments.client.post(
        f"{API}/statement-lines/{line['id']}/match", json={"payment_id": twin_a["id"]},
        headers={**manager.headers, **key()},
    )  # fmt: skip
    assert twice.status_code == 409
    undo = await payments.client.post(
        f"{API}/statement-lines/{line['id']}/unmatch", headers={**manager.headers, **key()}
    )
    assert undo.status_code == 200 and undo.json()["status"] == "unmatched"
    back = (await payments.get(manager, twin_a["id"])).json()
    assert back["paid"] == "0.00" and back["outstanding"] == "19.99"
    ledger = await payments.client.get(
        f"{API}/payments/{twin_a['id']}/allocations", headers=manager.headers
    )
    assert [a["kind"] for a in ledger.json()] == ["payment", "reversal"]
    assert len(await payments.events("payments.reconciliation.completed")) == 2  # 1st, grown

    agent = await payments.user("agent")
    assert (
        await payments.client.get(f"{API}/statements", headers=agent.headers)
    ).status_code == 403


async def test_bad_statements_are_422(payments: Payments) -> None:
    manager = await payments.user("manager")
    for content in (
        b"",
        b"date,amount\n2026-01-01,1\n",
        statement("2026-13-45;1,00;EUR;x;y"),
        statement("2026-12-01;abc;EUR;x;y"),
        statement("2026-12-01;1,001;EUR;x;y"),
        statement("2026-12-01;1,00;XYZ;x;y"),
        b"\xff\xfe\x00",
        # what the csv module cannot read: a lone CR inside a line, a cell over its limit
        b"date,amount,currency,reference,counterparty\n2026-12-01,10.00,EUR,R1\rX,Y\n",
        statement(f"2026-12-01;1,00;EUR;{'R' * 140_000};y"),
    ):
        files = {"file": ("bank.csv", content, "text/csv")}
        answer = await payments.client.post(
            f"{API}/statements", files=files, headers={**manager.headers, **key()}
        )
        assert answer.status_code == 422, (content, answer.text)


async def test_the_overdue_job_marks_a_payment_once(payments: Payments) -> None:
    # Relative to the real today: the app's scheduler runs the job at start on the real
    # clock, so the explicit runs below must see the same day it does.
    today = utcnow().date()
    agent = await payments.user("agent")
    late = await payments.create(agent, amount="10.00", due_date=str(today - timedelta(days=32)))
    part = await payments.create(agent, amount="10.00", due_date=str(today - timedelta(days=31)))
    await payments.move(agent, part["id"], "payment", "3.00")
    await payments.create(agent, amount="10.00", due_date=str(today + timedelta(days=17)))
    context = payments.app.context
    # the app's scheduler may run the job too (it is due at start): together, once each.
    # Racing runs on PostgreSQL; SQLite serialises writers anyway, and three racing writers
    # on the loaded shared machine can outwait its busy timeout
    runs = 3 if context.engine.dialect.name == "postgresql" else 1
    await asyncio.gather(*(mark_overdue(context, today=today) for _ in range(runs)))
    assert (await mark_overdue(context, today=today + timedelta(days=1)))["overdue"] == 0
    assert (await payments.get(agent, late["id"])).json()["status"] == "overdue"
    events = await payments.events("payments.payment.overdue")
    assert len(events) == 2 and {e.data["outstanding"] for e in events} == {"10.00", "7.00"}
    balance = (await payments.client.get(f"{API}/balances", headers=agent.headers)).json()
    assert balance["balances"][0]["overdue"] == "17.00"
    # money on an overdue payment: partly paid, then paid in full
    paid = await payments.move(agent, late["id"], "payment", "10.00")
    assert paid.json()["payment"]["status"] == "paid"


async def test_a_statement_with_cr_line_ends_is_read(payments: Payments) -> None:
    """Old Mac line ends, as some banks still export them."""
    manager = await payments.user("manager")
    due = await payments.create(manager, amount="12.00", reference="INV-CR")
    content = b"date,amount,currency,reference,counterparty\r2026-12-01,12.00,EUR,INV-CR,Bob\r"
    result = await upload(payments, manager.headers, content)
    assert (result["lines"], result["matched"]) == (1, 1)
    assert (await payments.get(manager, due["id"])).json()["status"] == "paid"


async def test_lines_dated_at_the_calendars_ends_are_kept_unmatched(payments: Payments) -> None:
    """The match window (± days) around 0001-01-01 and 9999-12-31 stays in the calendar."""
    manager = await payments.user("manager")
    await payments.create(manager, amount="10.00", due_date="2026-12-01")
    content = statement("0001-01-01;10,00;EUR;;X", "31.12.9999;10,00;EUR;;Y")
    result = await upload(payments, manager.headers, content)
    assert (result["lines"], result["matched"], result["unmatched"]) == (2, 0, 2)


async def test_a_statements_file_name_is_stored_without_control_characters(
    payments: Payments,
) -> None:
    manager = await payments.user("manager")
    # by hand: clients percent-encode a NUL in a multipart file name, a raw one reaches us too
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="bank\x00\xe2\x80\xae.csv"'
        b"\r\nContent-Type: text/csv\r\n\r\n"
        + statement("2026-12-01;1,00;EUR;x;y")
        + b"\r\n--b--\r\n"
    )
    answer = await payments.client.post(
        f"{API}/statements",
        content=body,
        headers={**manager.headers, **key(), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["filename"] == "bank_.csv"


async def test_racing_matches_and_unmatches_of_one_line_book_it_once(payments: Payments) -> None:
    """Concurrent hand matches of one line (distinct Idempotency-Keys) booked its amount once
    each (PostgreSQL: 5 x 10.00 on the payment); racing unmatches reversed it as often."""
    manager = await payments.user("manager")
    made = await payments.create(manager, amount="100.00")
    assert (await payments.move(manager, made["id"], "payment", "50.00")).status_code == 201
    result = await upload(payments, manager.headers, statement("2026-01-01;10,00;EUR;zz;Y"))
    lines = await payments.client.get(
        f"{API}/statements/{result['id']}/lines", headers=manager.headers
    )
    (line,) = lines.json()["items"]
    url = f"{API}/statement-lines/{line['id']}"
    matches = await asyncio.gather(*(
        payments.client.post(f"{url}/match", json={"payment_id": made["id"]},
                             headers={**manager.headers, **key()})
        for _ in range(5)
    ))  # fmt: skip
    assert sorted(a.status_code for a in matches) == [200, 409, 409, 409, 409]
    assert (await payments.get(manager, made["id"])).json()["paid"] == "60.00"
    undos = await asyncio.gather(*(
        payments.client.post(f"{url}/unmatch", headers={**manager.headers, **key()})
        for _ in range(5)
    ))  # fmt: skip
    assert sorted(a.status_code for a in undos) == [200, 409, 409, 409, 409]
    assert (await payments.get(manager, made["id"])).json()["paid"] == "50.00"


async def test_a_thousands_separator_alone_is_422_saying_it_is_ambiguous(
    payments: Payments,
) -> None:
    """1,234 (one thousand two hundred thirty-four, as many banks export it) was read as a
    decimal comma and refused as "not an amount in EUR": the 422 did not say why or what
    to write. It names the ambiguity and the unambiguous spellings; nothing is stored."""
    manager = await payments.user("manager")
    for amount, currency, says in (
        ("1,234", "EUR", "write 1234.00 (or 1,234.00, with both separators)"),
        ("-12.500", "USD", "write -12500.00 (or -12.500,00, with both separators)"),
        ("1,234", "KWD", "write 1234.000 (or 1,234.000, with both separators) for thousands"),
    ):
        files = {"file": ("bank.csv", statement(f"2026-12-01;{amount};{currency};R;Y"), "text/csv")}
        answer = await payments.client.post(
            f"{API}/statements", files=files, headers={**manager.headers, **key()}
        )
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert f"row 2: amount {amount!r} is ambiguous" in detail, detail
        assert says in detail, detail
    listed = await payments.client.get(f"{API}/statements", headers=manager.headers)
    assert listed.json()["items"] == [], listed.text
    # both separators are read as before; they show the file's decimal separator, which
    # reads 1,234 (thousands, here) in a currency of 3 decimals too; JPY has no decimals
    both = statement(
        "2026-12-01;1,234.00;EUR;R;Y", "2026-12-01;1,234;KWD;R;Y", "2026-12-01;1,234;JPY;R;Y"
    )
    made = await upload(payments, manager.headers, both)
    lines = await payments.client.get(
        f"{API}/statements/{made['id']}/lines", headers=manager.headers
    )
    amounts = sorted(x["amount"] for x in lines.json()["items"])
    assert amounts == ["1234", "1234.00", "1234.000"], lines.text


async def test_a_statement_amount_with_more_digits_than_decimal_precision_is_422(
    payments: Payments,
) -> None:
    """Decimal's 28-digit context rounded the scaled amount: 1.0000000000000000000000000001 EUR
    was read as 1.00 (and matched a 1.00 payment) instead of being refused."""
    manager = await payments.user("manager")
    due = await payments.create(manager, amount="1.00", reference="R-PREC")
    for amount in ("1.0000000000000000000000000001", "1,0000000000000000000000000001"):
        files = {"file": ("bank.csv", statement(f"2026-12-01;{amount};EUR;R-PREC;Y"), "text/csv")}
        answer = await payments.client.post(
            f"{API}/statements", files=files, headers={**manager.headers, **key()}
        )
        assert answer.status_code == 422, answer.text
    assert (await payments.get(manager, due["id"])).json()["paid"] == "0.00"


async def test_a_line_confirms_a_receipt_only_for_the_receipts_amount(payments: Payments) -> None:
    """A line whose reference is a receipt's external_id was 'matched' to that receipt
    whatever its amount: a bank credit of 5,000.00 was reconciled against a 15.00 receipt
    and nobody was asked about the rest."""
    manager = await payments.user("manager")
    made = await payments.create(manager, amount="40.00")
    paid = await payments.move(manager, made["id"], "payment", "15.00", provider="acme",
                               external_id="tx_77")  # fmt: skip
    assert paid.status_code == 201, paid.text
    result = await upload(payments, manager.headers, statement(
        "2026-12-01;5.000,00;EUR;tx_77;Acme", "2026-12-02;15,00;EUR;tx_77;Acme"))  # fmt: skip
    assert (result["matched"], result["unmatched"]) == (1, 1)
    lines = await payments.client.get(
        f"{API}/statements/{result['id']}/lines", headers=manager.headers
    )
    by_amount = {line["amount"]: line for line in lines.json()["items"]}
    assert by_amount["5000.00"]["status"] == "unmatched"
    assert by_amount["15.00"]["status"] == "matched"
    assert by_amount["15.00"]["allocation_id"] == paid.json()["allocation"]["id"]
    assert (await payments.get(manager, made["id"])).json()["paid"] == "15.00"


async def test_a_receipt_is_confirmed_by_one_line_only(payments: Payments) -> None:
    """Two bank lines (another day each) with a receipt's external_id were both 'matched' to
    that one receipt: the second credit was neither booked nor left for a person."""
    manager = await payments.user("manager")
    made = await payments.create(manager, amount="40.00")
    paid = await payments.move(manager, made["id"], "payment", "15.00", provider="acme",
                               external_id="tx_88")  # fmt: skip
    assert paid.status_code == 201, paid.text
    first = await upload(payments, manager.headers, statement("2026-12-01;15,00;EUR;tx_88;A"))
    assert first["matched"] == 1
    second = await upload(payments, manager.headers, statement("2026-12-03;15,00;EUR;tx_88;A"))
    assert (second["matched"], second["unmatched"]) == (0, 1)
    both = await upload(payments, manager.headers, statement(
        "2026-12-04;15,00;EUR;tx_88;B", "2026-12-05;15,00;EUR;tx_88;B"))  # fmt: skip
    assert (both["matched"], both["unmatched"]) == (0, 2)
    # the same for a payment paid already, named by its own external_id
    paid_off = await payments.create(manager, amount="25.00", provider="acme",
                                     external_id="inv_88")  # fmt: skip
    assert (await payments.move(manager, paid_off["id"], "payment", "25.00")).status_code == 201
    twice = await upload(payments, manager.headers, statement(
        "2026-12-06;99,00;EUR;inv_88;C",  # another amount: not this payment's money
        "2026-12-06;25,00;EUR;inv_88;C", "2026-12-07;25,00;EUR;inv_88;C"))  # fmt: skip
    assert (twice["matched"], twice["ambiguous"]) == (1, 2)
    assert (await payments.get(manager, paid_off["id"])).json()["paid"] == "25.00"
    # and for one a bank line paid: a second line naming it is not confirmed either
    by_bank = await payments.create(manager, amount="30.00", provider="acme",
                                    external_id="inv_89")  # fmt: skip
    again = await upload(payments, manager.headers, statement(
        "2026-12-06;30,00;EUR;inv_89;D", "2026-12-08;30,00;EUR;inv_89;D"))  # fmt: skip
    assert (again["matched"], again["ambiguous"]) == (1, 1)
    assert (await payments.get(manager, by_bank["id"])).json()["paid"] == "30.00"


async def test_racing_uploads_that_match_one_payment_are_all_stored(payments: Payments) -> None:
    """Statements uploaded at once whose lines fit one payment: the ones that lost the race
    for its money were 409 payments-overpayment (PostgreSQL), the whole upload refused. The
    line that does not fit any more is left unmatched, as it is when uploaded later."""
    manager = await payments.user("manager")
    made = await payments.create(manager, amount="19.99", due_date="2026-12-01")
    answers = await asyncio.gather(*(
        payments.client.post(
            f"{API}/statements", headers={**manager.headers, **key()},
            files={"file": ("b.csv", statement(f"2026-12-01;19,99;EUR;;P{i}"), "text/csv")},
        )
        for i in range(4)
    ))  # fmt: skip
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert sorted(a.json()["matched"] for a in answers) == [0, 0, 0, 1]
    assert (await payments.get(manager, made["id"])).json()["paid"] == "19.99"


async def test_an_overdue_payment_whose_match_is_undone_is_overdue_again(
    payments: Payments,
) -> None:
    """Paid by a statement line, then unmatched: the payment went back to 'due' with its
    overdue_at still set, so the overdue job (once per payment) never marked it again and
    the balances' overdue left it out for good."""
    manager = await payments.user("manager")
    today = utcnow().date()
    late = await payments.create(manager, amount="12.00", reference="INV-LATE",
                                 due_date=str(today - timedelta(days=40)))  # fmt: skip
    await mark_overdue(payments.app.context, today=today)
    assert (await payments.get(manager, late["id"])).json()["status"] == "overdue"
    result = await upload(payments, manager.headers, statement("2026-12-01;12,00;EUR;INV-LATE;X"))
    assert result["matched"] == 1
    lines = await payments.client.get(
        f"{API}/statements/{result['id']}/lines", headers=manager.headers
    )
    (line,) = lines.json()["items"]
    undo = await payments.client.post(
        f"{API}/statement-lines/{line['id']}/unmatch", headers={**manager.headers, **key()}
    )
    assert undo.status_code == 200, undo.text
    assert (await payments.get(manager, late["id"])).json()["status"] == "overdue"
    await mark_overdue(payments.app.context, today=today)
    balance = (await payments.client.get(f"{API}/balances", headers=manager.headers)).json()
    assert balance["balances"][0]["overdue"] == "12.00"


async def test_a_statement_quote_never_closed_is_422_not_a_swallowed_line(
    payments: Payments,
) -> None:
    """A counterparty whose quote never closes took every line after it into itself: the
    second payment line vanished and the first was stored with a garbled counterparty."""
    manager = await payments.user("manager")
    content = statement('2026-12-01;12,00;EUR;INV-1;"Bob', "2026-12-02;13,00;EUR;INV-2;Ann")
    files = {"file": ("bank.csv", content, "text/csv")}
    answer = await payments.client.post(
        f"{API}/statements", files=files, headers={**manager.headers, **key()}
    )
    assert answer.status_code == 422, answer.text
    assert "quote opened in row 2 is never closed" in answer.json()["detail"]
    listed = await payments.client.get(f"{API}/statements", headers=manager.headers)
    assert listed.json()["items"] == []


async def test_statement_errors_name_the_spreadsheet_row(payments: Payments) -> None:
    """Errors said ``line N`` but counted rows; a quoted counterparty with a line break makes
    them differ. Rows, as the CSV imports count them (the header is row 1), and the file's
    line where it differs; a column named twice is refused, not guessed."""
    manager = await payments.user("manager")
    two_lines = '2026-12-01;12,00;EUR;INV-1;"Bob\r\nRossi"'
    cases = (
        (statement(two_lines, "2026-12-01;abc;EUR;x;y"), "row 3: amount 'abc'"),
        (statement(two_lines, '2026-12-01;1,00;EUR;x;"y'), "row 3 (line 4 of the file)"),
        (b"date,amount,currency,reference,counterparty,amount\n", "amount more than once"),
    )
    for content, expected in cases:
        files = {"file": ("bank.csv", content, "text/csv")}
        answer = await payments.client.post(
            f"{API}/statements", files=files, headers={**manager.headers, **key()}
        )
        assert answer.status_code == 422, answer.text
        assert expected in answer.json()["detail"], answer.json()["detail"]


async def test_zero_and_negative_lines_are_kept_unmatched_and_never_booked(
    payments: Payments,
) -> None:
    """A line of 0 (or "-0") whose reference named a payment was stored `ambiguous`, as if a
    person could book it; a debit (negative) likewise. They are `unmatched` now, and a match
    by hand is 422: no money was received."""
    manager = await payments.user("manager")
    made = await payments.create(manager, amount="40.00", reference="INV-0",
                                 provider="bank", external_id="E-0")  # fmt: skip
    result = await upload(payments, manager.headers, statement(
        "2026-12-01;0,00;EUR;INV-0;A", "2026-12-01;-0;EUR;E-0;B",
        "2026-12-02;-40,00;EUR;INV-0;C", "2026-12-02;-40,00;EUR;E-0;D"))  # fmt: skip
    assert (result["matched"], result["ambiguous"], result["unmatched"]) == (0, 0, 4), result
    lines = await payments.client.get(
        f"{API}/statements/{result['id']}/lines", headers=manager.headers
    )
    items = lines.json()["items"]
    assert {i["status"] for i in items} == {"unmatched"}
    for line in items:
        match = await payments.client.post(
            f"{API}/statement-lines/{line['id']}/match", json={"payment_id": made["id"]},
            headers={**manager.headers, **key()},
        )  # fmt: skip
        assert match.status_code == 422, match.text
        assert match.json()["type"] == "urn:crm2:problem:payments-invalid-amount"
    got = (await payments.get(manager, made["id"])).json()
    assert (got["paid"], got["version"]) == ("0.00", made["version"])


async def test_a_statement_without_lines_is_422_and_stores_nothing(payments: Payments) -> None:
    """A header-only CSV made an empty statement (201) and a reconciliation event."""
    manager = await payments.user("manager")
    for content in (statement(), statement("", ";;;;"), b"date,amount,currency,reference,"
                    b"counterparty\n\n"):  # fmt: skip
        files = {"file": ("bank.csv", content, "text/csv")}
        answer = await payments.client.post(
            f"{API}/statements", files=files, headers={**manager.headers, **key()}
        )
        assert answer.status_code == 422, (content, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "no lines" in answer.json()["detail"]
    listed = await payments.client.get(f"{API}/statements", headers=manager.headers)
    assert listed.json()["items"] == []
    assert await payments.events("payments.reconciliation.completed") == []


async def test_a_statement_row_with_more_cells_than_the_header_is_422(
    payments: Payments,
) -> None:
    """A delimiter in an unquoted reference shifted the cells: the reference lost its tail,
    the counterparty became the tail, and the real counterparty was dropped unseen. Blank
    cells past the header's (a spreadsheet's padding) are read as before."""
    manager = await payments.user("manager")
    content = statement("2026-12-01;12,00;EUR;INV-1; part 2;Acme")
    files = {"file": ("bank.csv", content, "text/csv")}
    answer = await payments.client.post(
        f"{API}/statements", files=files, headers={**manager.headers, **key()}
    )
    assert answer.status_code == 422, answer.text
    assert "row 2: 6 cells, the header has 5" in answer.json()["detail"]
    listed = await payments.client.get(f"{API}/statements", headers=manager.headers)
    assert listed.json()["items"] == []
    padded = await upload(payments, manager.headers, statement("2026-12-01;12,00;EUR;INV-1;Acme;;"))
    assert padded["lines"] == 1


async def test_a_receipt_booked_by_a_statement_is_dated_at_the_lines_booked_on(
    payments: Payments,
) -> None:
    """A matched line's receipt was dated at the upload: the money arrived on the line's
    ``booked_on``, automatic match or by hand. A line dated after now is held at now."""
    manager = await payments.user("manager")
    by_ref = await payments.create(manager, amount="80.00", reference="INV-9")
    by_hand = await payments.create(manager, amount="12.00")
    ahead = (utcnow() + timedelta(days=30)).date()
    later = await payments.create(manager, amount="5.00", reference="INV-10")
    content = statement(
        "03.11.2026;80,00;EUR;INV-9;Bob",
        "04.11.2026;12,00;EUR;nothing;Carla",
        f"{ahead:%d.%m.%Y};5,00;EUR;INV-10;Dan",
    )
    first = await upload(payments, manager.headers, content)
    assert (first["matched"], first["unmatched"]) == (2, 1)
    lines = await payments.client.get(
        f"{API}/statements/{first['id']}/lines", params={"status": "unmatched"},
        headers=manager.headers,
    )  # fmt: skip
    (line,) = lines.json()["items"]
    match = await payments.client.post(
        f"{API}/statement-lines/{line['id']}/match", json={"payment_id": by_hand["id"]},
        headers={**manager.headers, **key()},
    )  # fmt: skip
    assert match.status_code == 200, match.text
    for made, day in ((by_ref, "2026-11-03"), (by_hand, "2026-11-04")):
        ledger = await payments.client.get(
            f"{API}/payments/{made['id']}/allocations", headers=manager.headers
        )
        (receipt,) = ledger.json()
        assert receipt["received_at"].startswith(f"{day}T12:00:00"), receipt
        assert (await payments.get(manager, made["id"])).json()["paid_at"].startswith(day)
    ledger = await payments.client.get(
        f"{API}/payments/{later['id']}/allocations", headers=manager.headers
    )
    assert ledger.json()[0]["received_at"][:10] <= utcnow().date().isoformat()


async def test_a_statement_credit_never_pays_an_outgoing_payment(payments: Payments) -> None:
    """A bank credit naming an outgoing payment (a commission paid out) or a refund by its
    reference or external id was booked on it as money received: the ledger said we had
    paid it. Only incoming payments are candidates; by hand it is 422."""
    manager = await payments.user("manager")
    commission = await payments.create(
        manager, direction="outgoing", amount="30.00", reference="COM-1"
    )
    refund = await payments.create(
        manager, direction="refund", amount="20.00", provider="bank", external_id="RF-1"
    )
    first = await upload(
        payments,
        manager.headers,
        statement("2026-11-03;30,00;EUR;COM-1;Broker", "2026-11-03;20,00;EUR;RF-1;Bank"),
    )
    assert (first["matched"], first["unmatched"]) == (0, 2)
    lines = await payments.client.get(
        f"{API}/statements/{first['id']}/lines", headers=manager.headers
    )
    line = next(i for i in lines.json()["items"] if i["reference"] == "COM-1")
    refused = await payments.client.post(
        f"{API}/statement-lines/{line['id']}/match", json={"payment_id": commission["id"]},
        headers={**manager.headers, **key()},
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "urn:crm2:problem:payments-direction-mismatch"
    for made in (commission, refund):
        assert (await payments.get(manager, made["id"])).json()["paid"] == "0.00"


async def test_a_line_of_the_first_day_of_the_calendar_books_its_receipt(
    payments: Payments,
) -> None:
    """Dated at its booked_on, a line of 0001-01-01 made a receipt before the first instant
    a receipt may have: the upload was a 500."""
    manager = await payments.user("manager")
    made = await payments.create(manager, amount="5.00", reference="OLD-1")
    first = await upload(payments, manager.headers, statement("0001-01-01;5,00;EUR;OLD-1;X"))
    assert first["matched"] == 1
    ledger = await payments.client.get(
        f"{API}/payments/{made['id']}/allocations", headers=manager.headers
    )
    assert ledger.json()[0]["received_at"].startswith("0001-01-01T12:00:00")


async def lines_of(p: Payments, headers: dict[str, str], result: dict[str, object]) -> list[Any]:
    answer = await p.client.get(f"{API}/statements/{result['id']}/lines", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


async def test_a_line_naming_a_paid_payment_by_reference_is_ambiguous(payments: Payments) -> None:
    """The reference step looked at open payments only: a second credit naming a payment paid
    already fell through to amount and date and was booked on another client's payment of
    that amount (or left unmatched), while the README said ambiguous, as a race made it."""
    manager = await payments.user("manager")
    paid = await payments.create(manager, amount="80.00", reference="INV-9")
    assert (await payments.move(manager, paid["id"], "payment", "80.00")).status_code == 201
    other = await payments.create(manager, amount="80.00", due_date="2026-12-01")
    cancelled = await payments.create(manager, amount="12.00", reference="INV-10")
    etag = (await payments.get(manager, cancelled["id"])).headers["ETag"]
    gone = await payments.client.post(
        f"{API}/payments/{cancelled['id']}/cancel", headers={**manager.headers, "If-Match": etag}
    )
    assert gone.status_code == 200, gone.text
    # a reference an open payment has too: the open one is paid, as before
    shared = await payments.create(manager, amount="20.00", reference="POL-1")
    assert (await payments.move(manager, shared["id"], "payment", "20.00")).status_code == 201
    open_ = await payments.create(manager, amount="20.00", reference="POL-1")
    result = await upload(payments, manager.headers, statement(
        "2026-12-01;80,00;EUR;INV-9;Bob", "2026-12-01;12,00;EUR;INV-10;Carl",
        "2026-12-01;20,00;EUR;POL-1;Dan"))  # fmt: skip
    assert (result["matched"], result["ambiguous"], result["unmatched"]) == (1, 2, 0)
    status = {line["reference"]: line for line in await lines_of(payments, manager.headers, result)}
    assert status["INV-9"]["status"] == status["INV-10"]["status"] == "ambiguous"
    assert status["INV-9"]["payment_id"] is None
    assert (status["POL-1"]["status"], status["POL-1"]["payment_id"]) == ("matched", open_["id"])
    assert (await payments.get(manager, other["id"])).json()["paid"] == "0.00"
    assert (await payments.get(manager, paid["id"])).json()["paid"] == "80.00"


async def test_a_statements_lines_see_what_the_lines_before_them_booked(
    payments: Payments,
) -> None:
    """Lines are looked up together, yet each is matched on the payments as the lines before
    it left them: a part paid by reference is found by its new outstanding amount, a
    payment paid by one line is not booked twice, a receipt is confirmed once."""
    manager = await payments.user("manager")
    part = await payments.create(manager, amount="100.00", reference="R-1", due_date="2026-12-01")
    twin = await payments.create(manager, amount="7.00", due_date="2026-12-02")
    receipt_of = await payments.create(manager, amount="50.00")
    booked = await payments.move(manager, receipt_of["id"], "payment", "15.00", provider="acme",
                                 external_id="tx_9")  # fmt: skip
    assert booked.status_code == 201, booked.text
    result = await upload(payments, manager.headers, statement(
        "2026-12-01;40,00;EUR;R-1;A",  # by reference: 60.00 left
        "2026-12-02;60,00;EUR;;B",  # by amount and date: the 60.00 left
        "2026-12-02;60,00;EUR;R-1;C",  # the reference's payment is paid now: ambiguous
        "2026-12-02;7,00;EUR;;D", "2026-12-03;7,00;EUR;;E",  # one payment of 7.00
        "2026-12-04;15,00;EUR;tx_9;F", "2026-12-05;15,00;EUR;tx_9;G"))  # fmt: skip
    by = {line["counterparty"]: line for line in await lines_of(payments, manager.headers, result)}
    assert {k: v["status"] for k, v in by.items()} == {
        "A": "matched", "B": "matched", "C": "ambiguous", "D": "matched", "E": "unmatched",
        "F": "matched", "G": "unmatched"}  # fmt: skip
    assert (by["A"]["matched_by"], by["B"]["matched_by"]) == ("reference", "amount_date")
    assert by["A"]["payment_id"] == by["B"]["payment_id"] == part["id"]
    assert by["D"]["payment_id"] == twin["id"]
    assert by["F"]["allocation_id"] == booked.json()["allocation"]["id"]
    assert (await payments.get(manager, part["id"])).json()["paid"] == "100.00"
    assert (await payments.get(manager, twin["id"])).json()["paid"] == "7.00"
    assert (await payments.get(manager, receipt_of["id"])).json()["paid"] == "15.00"
    assert result["matched"] == 4


async def test_racing_uploads_booking_payments_in_opposite_orders_all_succeed(
    payments: Payments,
) -> None:
    """Two statements whose lines fit the same payments in opposite orders, uploaded at once:
    each locks the payments it may book in one order (by id), so neither waits on the other
    in a cycle (PostgreSQL would abort one as a deadlock); every payment is booked once."""
    manager = await payments.user("manager")
    made = [
        await payments.create(manager, amount=f"{10 + i}.00", due_date="2026-12-01")
        for i in range(6)
    ]
    rows = [f"2026-12-01;{10 + i},00;EUR;;" for i in range(6)]
    contents = [
        statement(*(f"{row}{who}" for row in (rows if who % 2 else rows[::-1]))) for who in range(4)
    ]
    answers = await asyncio.gather(*(
        payments.client.post(
            f"{API}/statements", headers={**manager.headers, **key()},
            files={"file": ("b.csv", content, "text/csv")},
        )
        for content in contents
    ))  # fmt: skip
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert sum(a.json()["matched"] for a in answers) == 6
    for i, payment in enumerate(made):
        assert (await payments.get(manager, payment["id"])).json()["paid"] == f"{10 + i}.00"
