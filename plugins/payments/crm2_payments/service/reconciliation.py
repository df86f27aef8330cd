"""Reconciliation: bank statement lines matched to payments, money booked for each match.

Each new line is matched in order by:

1. external id: the line's reference is the ``external_id`` of a receipt
   (allocation) or of a payment — a receipt already booked for the line's amount (or a
   payment paid already of that amount) is only confirmed, and by one line only;
2. reference: the line's reference is the ``reference`` of open payments; of none open,
   of payments paid (refunded, cancelled) already: ``ambiguous``, a second payment of
   it? (the same as when another request pays the one open payment first);
3. amount and date: open incoming payments in the line's currency whose
   outstanding amount equals the line's, due within CRM2_PAYMENTS_MATCH_WINDOW_DAYS.

One candidate: ``matched`` (the amount is booked against it, unless step 1
found the receipt booked already); several: ``ambiguous``; none: ``unmatched``.
One candidate named by steps 1 or 2 that the line does not fit (more than is
outstanding, a payment paid or cancelled) is ``ambiguous`` too: the line names it,
a person decides. A line of no money received (zero, or negative: a debit, a fee)
is ``unmatched`` and never matched, by hand neither (422): nothing is booked for it.
A person matches and unmatches by hand; unmatching takes back the receipt the
match booked (a ``reversal`` entry in the ledger).

The lines of an upload are looked up together (``_Matcher``): a few queries per 500
lines, the payments found locked in id order, then each line matched in file order.

Every step keeps to the payments the uploader can see (the visibility rule): a
reconcile holder without ``payments:all_records`` books nothing on, and the answer
names none of, another user's payments; matching and unmatching by hand likewise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from crm2_core.api import (
    Conflict,
    Crm2Error,
    Visibility,
    check_version,
    from_minor,
    publish,
    safe_filename,
    utcnow,
)
from crm2_hookspecs import Principal
from crm2_payments.errors import (
    CurrencyMismatch,
    DirectionMismatch,
    InvalidAmount,
    InvalidTransition,
    LineAlreadyMatched,
    LineNotFound,
    LineNotMatched,
    Overpayment,
    StatementDuplicate,
)
from crm2_payments.events import ReconciliationCompleted
from crm2_payments.models import OPEN_STATUSES, Allocation, Payment, Statement, StatementLine
from crm2_payments.schemas.payments import AllocationCreate
from crm2_payments.service import payments as payments_service
from crm2_payments.service.money import text
from crm2_payments.service.statements import ParsedLine
from crm2_payments.visibility import RULES

# a statement's credit is money received: it pays an incoming payment (a premium), never
# one we pay out (a commission, a refund), whatever reference it carries
INCOMING = col(Payment.direction) == "incoming"
OUTSTANDING = col(Payment.amount_minor) - col(Payment.paid_minor) + col(Payment.refunded_minor)


def _days_around(day: date, days: int) -> tuple[date, date]:
    """``day`` ± ``days``, held within the calendar (a statement may be dated 0001-01-01)."""
    span = timedelta(days=days)
    low = day - span if day - date.min >= span else date.min
    high = day + span if date.max - day >= span else date.max
    return low, high


def _confirmed_by_a_line(*where: Any) -> Any:
    """Whether a matched line already confirms the receipt (or paid payment) ``where`` names:
    one bank credit confirms it; another with the same reference is other money."""
    return exists().where(col(StatementLine.status) == "matched", *where)


def received_at(line: StatementLine) -> datetime:
    """When the line's money arrived: its ``booked_on``, not the upload's time; a line dated
    after now (a bank's value date ahead) is held at now. Midday UTC: the same calendar day
    read in any zone from UTC-11 to UTC+11 (midnight showed the day before west of UTC), and
    a line of 0001-01-01 stays after the first instant a receipt may have (a 500 otherwise)."""
    return min(datetime.combine(line.booked_on, time(12), tzinfo=UTC), utcnow())


async def _book(
    session: AsyncSession,
    principal: Principal | None,
    line: StatementLine,
    payment: Payment,
    how: str,
) -> bool:
    """Book the line's amount on ``payment``; ``False`` when it does not fit."""
    outstanding = payment.amount_minor - payment.paid_minor + payment.refunded_minor
    if line.amount_minor <= 0 or line.amount_minor > outstanding or payment.status == "cancelled":
        return False
    try:
        async with session.begin_nested():
            allocation, _ = await payments_service.move(
                session, principal, payment, "payment", _receipt(line), statement_line_id=line.id
            )
    except (Overpayment, InvalidTransition):
        return False  # another request took the money first (or cancelled the payment)
    line.status, line.payment_id, line.allocation_id, line.matched_by = (
        "matched",
        payment.id,
        allocation.id,
        how,
    )
    return True


CHUNK = 500  # lines looked up at once; values in one IN list


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def _outstanding(payment: Payment) -> int:
    return payment.amount_minor - payment.paid_minor + payment.refunded_minor


class _Matcher:
    """The lines of one upload matched together: the candidates of every line are looked up
    at once (a query per chunk of lines and per step, not four per line), the payments among
    them locked in id order (two uploads lock in the same order: no deadlock; another
    request's change waits for this upload), then each line is matched in file order on
    those rows as they are then. What a line books changes the rows (and what the next
    line finds) exactly as the line-by-line queries did."""

    def __init__(self, session: AsyncSession, window: int, seen: Visibility) -> None:
        self.session, self.window, self.seen = session, window, seen
        self.receipts: dict[str, list[Allocation]] = {}  # external id: unconfirmed receipts
        self.by_external: dict[str, list[Payment]] = {}
        self.by_reference: dict[str, list[Payment]] = {}
        # (currency, outstanding): the open payments of that outstanding amount
        self.by_amount: dict[tuple[str, int], dict[uuid.UUID, Payment]] = {}
        self.pool: list[Payment] = []  # what the amount and date step found
        self.confirmed: set[uuid.UUID] = set()  # receipts a matched line confirms
        self.with_line: set[uuid.UUID] = set()  # payments a matched line names
        self.payments: dict[uuid.UUID, Payment] = {}

    async def look_up(self, lines: list[StatementLine]) -> None:
        credits = [line for line in lines if line.amount_minor > 0]
        refs = sorted({line.reference for line in credits if line.reference})
        for chunk in _chunks(refs):
            await self._by_reference(chunk)
        # by date: a chunk's lines span few days, its query (and the rows it locks) no more
        for part in _chunks(sorted(credits, key=lambda line: line.booked_on)):
            await self._by_amount(part)
        # a paid payment named by its external id is confirmed by one line only
        named = sorted(p.id for ps in self.by_external.values() for p in ps)
        for ids in _chunks(named):
            lined = select(col(StatementLine.payment_id)).where(
                col(StatementLine.status) == "matched", col(StatementLine.payment_id).in_(ids)
            )
            self.with_line.update(x for x in (await self.session.execute(lined)).scalars() if x)
        # the rows locked in one order (SQLite: the upload holds the database's write lock
        # since its lines were written) and read as they are once locked
        ids = sorted(self.payments)
        for part in _chunks(ids):
            stmt = (
                select(Payment)
                .where(col(Payment.id).in_(part))
                .order_by(col(Payment.id))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            await self.session.execute(stmt)
        for payment in self.pool:  # by their amounts once locked
            self.booked(payment)

    def _keep(self, payments: Any) -> list[Payment]:
        return [self.payments.setdefault(p.id, p) for p in payments]

    async def _by_reference(self, refs: list[str]) -> None:
        session, seen = self.session, self.seen
        receipts = select(Allocation).where(
            col(Allocation.external_id).in_(refs),
            col(Allocation.kind) == "payment",
            col(Allocation.payment_id).in_(select(col(Payment.id)).where(INCOMING)),
            seen.where(col(Allocation.owner_id)),
            ~_confirmed_by_a_line(col(StatementLine.allocation_id) == Allocation.id),
        )
        for receipt in (await session.execute(receipts)).scalars():
            assert receipt.external_id is not None
            self.receipts.setdefault(receipt.external_id, []).append(receipt)
        stmt = select(Payment).where(
            col(Payment.external_id).in_(refs), INCOMING, seen.where(col(Payment.owner_id))
        )
        for payment in self._keep((await session.execute(stmt)).scalars()):
            assert payment.external_id is not None
            self.by_external.setdefault(payment.external_id, []).append(payment)
        # every status: a paid (or cancelled) payment the line names is for a person to see
        stmt = select(Payment).where(
            col(Payment.reference).in_(refs), INCOMING, seen.where(col(Payment.owner_id))
        )
        for payment in self._keep((await session.execute(stmt)).scalars()):
            self.by_reference.setdefault(payment.reference, []).append(payment)

    async def _by_amount(self, lines: list[StatementLine]) -> None:
        spans = [_days_around(line.booked_on, self.window) for line in lines]
        stmt = select(Payment).where(
            INCOMING,
            col(Payment.currency).in_(sorted({line.currency for line in lines})),
            col(Payment.status).in_(OPEN_STATUSES),
            OUTSTANDING.in_(sorted({line.amount_minor for line in lines})),
            col(Payment.due_date).between(min(s[0] for s in spans), max(s[1] for s in spans)),
            self.seen.where(col(Payment.owner_id)),
        )
        self.pool.extend(self._keep((await self.session.execute(stmt)).scalars()))

    def candidates(self, line: StatementLine) -> tuple[str, list[Payment], Allocation | None]:
        """A line's candidates by the payments' rows as they are now: the three steps."""
        ref = line.reference
        if ref:
            receipts = [a for a in self.receipts.get(ref, []) if a.id not in self.confirmed]
            # the receipt itself: the same money; another amount is not this receipt
            receipt = receipts[0] if len(receipts) == 1 else None
            if (
                receipt is not None
                and receipt.currency == line.currency
                and receipt.amount_minor == line.amount_minor
            ):
                return "external_id", [], receipt
            named = [p for p in self.by_external.get(ref, []) if p.currency == line.currency]
            if named:
                return "external_id", named[:2], None
            named = [p for p in self.by_reference.get(ref, []) if p.currency == line.currency]
            open_ = [p for p in named if p.status in OPEN_STATUSES]
            if open_:
                return "reference", open_[:2], None
            if named:  # paid or cancelled already: a second payment? a person decides
                return "reference", named[:2], None
        low, high = _days_around(line.booked_on, self.window)
        pool = self.by_amount.get((line.currency, line.amount_minor), {})
        found = [
            p
            for p in pool.values()
            if p.status in OPEN_STATUSES
            and _outstanding(p) == line.amount_minor
            and p.due_date is not None
            and low <= p.due_date <= high
        ]
        return "amount_date", found[:2], None

    def booked(self, payment: Payment) -> None:
        """``payment``'s outstanding amount changed: it is found by its new amount."""
        key = (payment.currency, _outstanding(payment))
        self.by_amount.setdefault(key, {})[payment.id] = payment

    async def match(self, line: StatementLine) -> _Match:
        """Match ``line`` automatically among the payments the uploader can see."""
        if line.amount_minor <= 0:
            # a debit or a zero line: no money to book, whatever payment its reference names
            return _Match("unmatched")
        how, found, allocation = self.candidates(line)
        if allocation is not None:
            self.confirmed.add(allocation.id)
            self.with_line.add(allocation.payment_id)
            return _Match("matched", allocation.payment_id, allocation.id, how)
        if len(found) > 1:
            return _Match("ambiguous")
        if not found:
            return _Match("unmatched")
        payment = found[0]
        if how == "reference" and payment.status not in OPEN_STATUSES:
            # no open payment has the reference, a paid (refunded, cancelled) one does: a
            # second payment of it? A person decides, as when another took the money first
            return _Match("ambiguous")
        if (
            payment.status == "paid"
            and how == "external_id"
            and line.amount_minor == payment.amount_minor
            and payment.id not in self.with_line
        ):
            self.with_line.add(payment.id)
            return _Match("matched", payment.id, None, how)
        allocation = await _book_locked(self.session, line, payment)
        if allocation is None:
            return _Match("ambiguous" if how != "amount_date" else "unmatched")
        self.with_line.add(payment.id)
        self.booked(payment)
        return _Match("matched", payment.id, allocation.id, how)


@dataclass(frozen=True)
class _Match:
    status: str
    payment_id: uuid.UUID | None = None
    allocation_id: uuid.UUID | None = None
    matched_by: str | None = None


async def _book_locked(
    session: AsyncSession, line: StatementLine, payment: Payment
) -> Allocation | None:
    """Book the line's amount on ``payment``, locked by this upload; ``None`` when it does
    not fit. No savepoint: the guarded UPDATE that could refuse is the first write."""
    if line.amount_minor > _outstanding(payment) or payment.status == "cancelled":
        return None
    try:
        allocation, _ = await payments_service.move(
            session, None, payment, "payment", _receipt(line), statement_line_id=line.id
        )
    except (Overpayment, InvalidTransition):
        return None  # not locked after all (a payment read twice?): the guard held
    return allocation


def _receipt(line: StatementLine) -> AllocationCreate:
    return AllocationCreate(
        amount=from_minor(line.amount_minor, line.currency),
        currency=line.currency,
        received_at=received_at(line),
        method="bank_transfer",
        reference=line.reference[:140],
    )


async def upload(
    session: AsyncSession,
    context: Any,
    principal: Principal | None,
    filename: str,
    parsed: list[ParsedLine],
) -> tuple[Statement, dict[str, int]]:
    window: int = context.plugin_settings("payments").match_window_days
    prints = [p.fingerprint for p in parsed]
    known: dict[str, uuid.UUID] = {}  # a known line's fingerprint: its statement
    for start in range(0, len(prints), 500):
        chunk = prints[start : start + 500]
        stmt = select(col(StatementLine.fingerprint), col(StatementLine.statement_id)).where(
            col(StatementLine.fingerprint).in_(chunk)
        )
        known.update({f: s for f, s in await session.execute(stmt)})
    fresh = [p for p in parsed if p.fingerprint not in known]
    if not fresh:
        # the file again: an empty statement would be stored and announced, and the user
        # would look for lines that are all in the earlier one
        earlier = known[parsed[0].fingerprint]
        raise StatementDuplicate(
            f"every line of this file is in statement {earlier} already: nothing to add",
            statement_id=str(earlier),
        )
    statement = Statement(
        filename=safe_filename(filename, fallback=""),
        lines=len(fresh),
        duplicates=len(parsed) - len(fresh),
        uploaded_by=principal.id if principal is not None and principal.kind == "user" else None,
    )
    session.add(statement)
    rows = [
        StatementLine(
            statement_id=statement.id,
            fingerprint=p.fingerprint,
            booked_on=p.booked_on,
            amount_minor=p.amount_minor,
            currency=p.currency,
            reference=p.reference,
            counterparty=p.counterparty,
        )
        for p in fresh
    ]
    try:
        async with session.begin_nested():
            session.add_all(rows)
            await session.flush()
    except IntegrityError:
        raise Conflict("the same statement is being uploaded by another request; retry") from None
    counts = {"matched": 0, "unmatched": 0, "ambiguous": 0}
    matcher = _Matcher(session, window, RULES.in_session(session, principal))
    await matcher.look_up(rows)
    matches = [await matcher.match(line) for line in rows]
    # the lines written at once (one executemany), not one UPDATE per line
    changed = [
        {"id": line.id, "status": m.status, "payment_id": m.payment_id,
         "allocation_id": m.allocation_id, "matched_by": m.matched_by}
        for line, m in zip(rows, matches, strict=True)
        if m.status != "unmatched"
    ]  # fmt: skip
    for part in _chunks(changed):
        await session.execute(update(StatementLine), part)
    for line, m in zip(rows, matches, strict=True):
        counts[m.status] += 1
        set_committed_value(line, "status", m.status)
        for name in ("payment_id", "allocation_id", "matched_by"):
            set_committed_value(line, name, getattr(m, name))
    event = ReconciliationCompleted(lines=len(fresh), duplicates=statement.duplicates, **counts)
    publish(session, event, subject=statement.id, actor=principal)
    return statement, counts


async def counts_of(session: AsyncSession, statement_id: uuid.UUID) -> dict[str, int]:
    """The statement's lines by status, the same for every reconcile holder: the lines (and
    their statuses) are shared (``payments_seen``), so a count tells no more than they do;
    counting only the caller's matches would contradict the lines they read."""
    stmt = (
        select(col(StatementLine.status), func.count())
        .where(col(StatementLine.statement_id) == statement_id)
        .group_by(col(StatementLine.status))
    )
    counts = {"matched": 0, "unmatched": 0, "ambiguous": 0}
    counts.update({s: int(n) for s, n in await session.execute(stmt)})
    return counts


async def payments_seen(
    session: AsyncSession, principal: Principal, lines: list[StatementLine]
) -> set[uuid.UUID]:
    """Which of the lines' payments the caller may see. Statements are shared by every
    reconcile holder (a clerk matches by hand what an admin's upload left over), so the
    lines stay readable; a line names only the payments (and receipts) the caller sees."""
    ids = {line.payment_id for line in lines if line.payment_id is not None}
    visibility = RULES.in_session(session, principal)
    if not ids or visibility.unrestricted:
        return ids
    stmt = select(col(Payment.id)).where(
        col(Payment.id).in_(ids), visibility.where(col(Payment.owner_id))
    )
    return set((await session.execute(stmt)).scalars())


async def get_line(session: AsyncSession, line_id: uuid.UUID) -> StatementLine:
    line = await session.get(StatementLine, line_id, populate_existing=True)
    if line is None:
        raise LineNotFound(f"no statement line {line_id}")
    return line


async def manual_match(
    session: AsyncSession,
    principal: Principal,
    line_id: uuid.UUID,
    payment_id: uuid.UUID,
    if_match: str | None,
) -> StatementLine:
    line = await get_line(session, line_id)
    check_version(if_match, line.version)
    if line.status == "matched":
        raise LineAlreadyMatched("unmatch the line first")
    if line.amount_minor <= 0:
        raise InvalidAmount(
            f"the line's {text(line.amount_minor, line.currency)} is no money received: "
            "a zero or negative line is never booked on a payment"
        )
    await _claim(session, line, LineAlreadyMatched("the line was matched meanwhile"))
    # with the visibility rule: a reconcile holder without payments:all_records books
    # only on (and learns only of) the payments they can see
    payment = await payments_service.get_payment(session, principal, payment_id)
    if payment.currency != line.currency:
        raise CurrencyMismatch(f"the line is in {line.currency}, the payment in {payment.currency}")
    if payment.direction != "incoming":
        raise DirectionMismatch(
            f"the line is money received; payment {payment.id} is {payment.direction} money"
        )
    if not await _book(session, principal, line, payment, "manual"):
        raise Overpayment(
            f"the line's {text(line.amount_minor, line.currency)} does not fit "
            "the payment's outstanding amount"
        )
    await session.flush()
    return line


async def unmatch(
    session: AsyncSession, principal: Principal, line_id: uuid.UUID, if_match: str | None
) -> StatementLine:
    line = await get_line(session, line_id)
    check_version(if_match, line.version)
    if line.status != "matched" or line.payment_id is None:
        raise LineNotMatched("the line is not matched")
    # the visibility rule, before anything is claimed: 404 on another user's payment
    await payments_service.get_payment(session, principal, line.payment_id)
    await _claim(session, line, LineNotMatched("the line was unmatched meanwhile"))
    allocation = (
        await session.get(Allocation, line.allocation_id)
        if line.allocation_id is not None
        else None
    )
    if allocation is not None and allocation.statement_line_id == line.id:
        payment = await session.get(Payment, line.payment_id, populate_existing=True)
        assert payment is not None
        body = AllocationCreate(
            amount=from_minor(allocation.amount_minor, allocation.currency),
            currency=allocation.currency,
            method="bank_transfer",
            reference=f"unmatched {line.reference}"[:140],
        )
        await payments_service.move(
            session, principal, payment, "reversal", body, statement_line_id=line.id
        )
    line.status, line.payment_id, line.allocation_id, line.matched_by = (
        "unmatched",
        None,
        None,
        None,
    )
    await session.flush()
    return line


async def _claim(session: AsyncSession, line: StatementLine, refused: Crm2Error) -> None:
    """Take ``line`` for this request before any money moves: one conditional UPDATE on the
    version it was read at. Of racing matches (or unmatches) of one line one goes on; the
    others wait for it and are refused, so a line is booked (or taken back) once."""
    claimed = await session.execute(
        update(StatementLine)
        .where(col(StatementLine.id) == line.id, col(StatementLine.version) == line.version)
        .values(version=col(StatementLine.version) + 1, updated_at=utcnow())
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise refused
    await session.refresh(line)
