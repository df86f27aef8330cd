"""Policies: numbering per insurer, status transitions, renewals; every change announced."""

from __future__ import annotations

import calendar
import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    PreconditionFailed,
    Records,
    Visibility,
    from_minor,
    publish,
)
from crm2_deals.errors import (
    InvalidPolicyTransition,
    PolicyClosed,
    PolicyDatesInvalid,
    PolicyLinkInvalid,
    PolicyNumberTaken,
    RenewalExists,
)
from crm2_deals.events import PolicyActivated, PolicyCancelled, PolicyCreated, PolicyUpdated
from crm2_deals.models import Client, Policy
from crm2_deals.repository import clients as clients_repo
from crm2_deals.repository import deals as deals_repo
from crm2_deals.repository import policies as repo
from crm2_deals.schemas.policies import (
    PolicyCreate,
    PolicyRenew,
    PolicyUpdate,
)
from crm2_deals.service.activities import add_system_activity, follow_owner
from crm2_deals.service.money import minor_units
from crm2_deals.service.owners import check_owner_sees_client, owner_for
from crm2_deals.visibility import RULES
from crm2_hookspecs import Principal

ENDED = ("expired", "cancelled")  # a policy whose term is over: its dates are history


def _minor(premium: Decimal, currency: str) -> int:
    return minor_units(premium, currency, "a premium")


def _taken(policy_number: str, insurer: str) -> PolicyNumberTaken:
    return PolicyNumberTaken(f"{insurer} already has a policy numbered {policy_number}")


async def _insert(session: AsyncSession, row: Policy) -> None:
    """Insert; the unique (insurer, number) constraint settles a race the pre-check lost,
    and so does the one open renewal per policy (``_check_renewable`` locks first, so
    only a writer that skipped it meets that one)."""
    try:
        await repo.policies.add(session, row)
    except IntegrityError as exc:
        if "open_renewal" in str(exc.orig) or "renewal_of" in str(exc.orig):
            raise RenewalExists("the policy already has a draft or active renewal") from exc
        if "number" in str(exc.orig):
            raise _taken(row.number, row.insurer) from exc
        raise


async def _client(session: AsyncSession, vis: Visibility, client_id: uuid.UUID) -> Client:
    """The visible client a policy is written on, share-locked to the commit (a hand-over
    of it waits for the policy, or the policy for it: ``clients_repo.shared_client``)."""
    client = await clients_repo.shared_client(session, vis, client_id)
    if client is None:
        raise PolicyLinkInvalid(f"no client {client_id}")
    return client


async def _check_deal(
    session: AsyncSession, vis: Visibility, deal_id: uuid.UUID | None, client_id: uuid.UUID
) -> None:
    if deal_id is None:
        return
    deal = await deals_repo.deals.get(session, vis, deal_id)
    if deal is None:
        raise PolicyLinkInvalid(f"no deal {deal_id}")
    if deal.client_id != client_id:
        raise PolicyLinkInvalid("the deal belongs to another client")


def _announce_created(session: AsyncSession, row: Policy, principal: Principal | None) -> None:
    premium = format(from_minor(row.premium_minor, row.currency), "f")
    event = PolicyCreated(
        number=row.number,
        insurer=row.insurer,
        product=row.product,
        client_id=row.client_id,
        premium=premium,
        currency=row.currency,
        payment_frequency=row.payment_frequency,
        start_date=row.start_date,
        end_date=row.end_date,
        renewal_of=row.renewal_of,
        owner_id=row.owner_id,
    )
    publish(session, event, subject=row.id, actor=principal)


def _announce_activated(session: AsyncSession, row: Policy, principal: Principal | None) -> None:
    premium = format(from_minor(row.premium_minor, row.currency), "f")
    event = PolicyActivated(
        client_id=row.client_id,
        premium=premium,
        currency=row.currency,
        payment_frequency=row.payment_frequency,
        start_date=row.start_date,
        end_date=row.end_date,
        owner_id=row.owner_id,
    )
    publish(session, event, subject=row.id, actor=principal)
    add_system_activity(
        session,
        client_id=row.client_id,
        owner_id=row.owner_id,
        deal_id=row.deal_id,
        policy_id=row.id,
        subject="Policy issued",
        body=(
            f"{row.insurer} {row.number} ({row.product}): {premium} {row.currency} "
            f"{row.payment_frequency.replace('_', '-')}, {row.start_date} to {row.end_date}"
        ),
    )


async def _check_renewable(session: AsyncSession, old: Policy) -> None:
    """A renewal is of an active or expired policy without a draft or active one yet,
    whether made by ``…/renew`` or recorded by a create naming ``renewal_of``.

    The policy is locked first, to the commit: of two renewals at once the second
    waits here, then finds the first's (409), instead of both finding none."""
    locked = await repo.lock_policy(session, old.id)
    status = locked.status if locked is not None else old.status
    if status not in ("active", "expired"):
        raise InvalidPolicyTransition(f"a {status} policy cannot be renewed")
    existing = await repo.open_renewal(session, old.id)
    if existing is not None:
        raise RenewalExists(
            f"policy {old.number} already has a draft or active renewal: {existing}",
            renewal={"id": str(existing)},
        )


async def create_policy(session: AsyncSession, principal: Principal, data: PolicyCreate) -> Policy:
    vis = RULES.in_session(session, principal)
    client = await _client(session, vis, data.client_id)
    await _check_deal(session, vis, data.deal_id, client.id)
    if data.renewal_of is not None:
        renewed = await repo.policies.get(session, vis, data.renewal_of)
        if renewed is None or renewed.client_id != client.id:
            raise PolicyLinkInvalid("renewal_of must name a policy of the same client")
        await _check_renewable(session, renewed)
    owner = await owner_for(session, principal, vis, data.owner_id, default=client.owner_id)
    await check_owner_sees_client(session, principal, owner, client.owner_id)
    if await repo.number_taken(session, data.insurer, data.number):
        raise _taken(data.number, data.insurer)
    row = Policy(
        number=data.number,
        insurer=data.insurer,
        client_id=client.id,
        deal_id=data.deal_id,
        product=data.product,
        premium_minor=_minor(data.premium, data.currency),
        currency=data.currency,
        payment_frequency=data.payment_frequency,
        start_date=data.start_date,
        end_date=data.end_date,
        status=data.status,
        renewal_of=data.renewal_of,
        owner_id=owner,
    )
    await _insert(session, row)
    _announce_created(session, row, principal)
    if row.status == "active":
        _announce_activated(session, row, principal)
    return row


POLICIES = Records(repo.policies, RULES)
get_policy = POLICIES.get
delete_policy = POLICIES.delete
list_policies = POLICIES.lister(repo.list_policies)


async def update_policy(
    session: AsyncSession,
    principal: Principal,
    policy_id: uuid.UUID,
    if_match: str,
    data: PolicyUpdate,
) -> Policy:
    vis = RULES.in_session(session, principal)
    row = await POLICIES.for_update(session, principal, policy_id, if_match)
    version = row.version
    changes = data.model_dump(exclude_unset=True)
    values: dict[str, object] = {
        k: v
        for k, v in changes.items()
        if k in ("number", "insurer", "product", "payment_frequency")
    }
    number, insurer = changes.get("number", row.number), changes.get("insurer", row.insurer)
    if (number, insurer) != (row.number, row.insurer) and await repo.number_taken(
        session, insurer, number, exclude=row.id
    ):
        raise _taken(number, insurer)
    if "deal_id" in changes:
        await _check_deal(session, vis, data.deal_id, row.client_id)
        values["deal_id"] = data.deal_id
    start, end = changes.get("start_date", row.start_date), changes.get("end_date", row.end_date)
    if row.status in ENDED and (start, end) != (row.start_date, row.end_date):
        # what was insured when is a record (claims, renewals, payments refer to it)
        raise PolicyClosed(
            f"policy {row.number} is {row.status}: its term ({row.start_date} to "
            f"{row.end_date}) is history and cannot change"
        )
    if end <= start:
        raise PolicyDatesInvalid(f"end_date {end} is not after start_date {start}")
    values.update(start_date=start, end_date=end)
    if end != row.end_date:
        values["renewal_notified_on"] = None  # a new end date deserves its own notice
    if "premium" in changes or "currency" in changes:
        currency = changes.get("currency", row.currency)
        premium = changes.get("premium", from_minor(row.premium_minor, row.currency))
        values.update(premium_minor=_minor(premium, currency), currency=currency)
    if "owner_id" in changes:
        owner = await owner_for(session, principal, vis, data.owner_id, current=row.owner_id)
        values["owner_id"] = owner
        if owner != row.owner_id:
            client_owner = await clients_repo.client_owner(session, row.client_id)
            await check_owner_sees_client(session, principal, owner, client_owner)
            await follow_owner(session, owner, policy_id=row.id)
    before_owner = row.owner_id
    differing = {k for k, v in values.items() if getattr(row, k) != v}
    try:  # only what differs: a PATCH that changes nothing writes nothing (ETags stay good)
        await repo.policies.update(session, row, values, expected_version=version)
    except IntegrityError as exc:
        raise _taken(number, insurer) from exc
    names = sorted(
        "premium" if k == "premium_minor" else k
        for k in differing - {"renewal_notified_on"}  # the job's bookkeeping
    )
    if names:  # as clients and deals announce theirs; a hand-over tells the previous owner
        previous = before_owner if "owner_id" in differing else None
        event = PolicyUpdated(changed=names, owner_id=row.owner_id, previous_owner_id=previous)
        publish(session, event, subject=row.id, actor=principal)
    return row


async def _transition(
    session: AsyncSession,
    principal: Principal,
    policy_id: uuid.UUID,
    if_match: str | None,
    allowed: tuple[str, ...],
    to_status: str,
) -> Policy:
    row = await POLICIES.for_update(session, principal, policy_id, if_match)
    if row.status not in allowed:
        raise InvalidPolicyTransition(f"a {row.status} policy cannot become {to_status}")
    if not await repo.change_status(session, row.id, row.version, allowed, to_status):
        raise PreconditionFailed("the policy changed while you were updating it; read it again")
    return await get_policy(session, principal, policy_id)


async def activate_policy(
    session: AsyncSession, principal: Principal, policy_id: uuid.UUID, if_match: str | None
) -> Policy:
    """draft → active: the policy is issued."""
    row = await _transition(session, principal, policy_id, if_match, ("draft",), "active")
    _announce_activated(session, row, principal)
    return row


async def cancel_policy(
    session: AsyncSession,
    principal: Principal,
    policy_id: uuid.UUID,
    if_match: str | None,
    reason: str = "",
) -> Policy:
    """draft | active → cancelled."""
    row = await _transition(
        session, principal, policy_id, if_match, ("draft", "active"), "cancelled"
    )
    event = PolicyCancelled(client_id=row.client_id, owner_id=row.owner_id)
    publish(session, event, subject=row.id, actor=principal)
    add_system_activity(
        session,
        client_id=row.client_id,
        owner_id=row.owner_id,
        deal_id=row.deal_id,
        policy_id=row.id,
        subject="Policy cancelled",
        body=f"{row.insurer} {row.number}" + (f": {reason}" if reason else ""),
    )
    return row


NUMBER_MAX_LENGTH = 100  # deals_policy.number


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, clamped to the month's last day."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_term(start: date, end: date) -> tuple[date, date]:
    """The term after ``start`` to ``end``: whole months when the term is, else the same days."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and add_months(start, months) == end:
        return end, add_months(end, months)
    return end, end + (end - start)


async def _free_number(session: AsyncSession, insurer: str, number: str) -> str:
    for k in range(1, 100):
        suffix = f"-R{k}"
        candidate = number[: NUMBER_MAX_LENGTH - len(suffix)] + suffix
        if not await repo.number_taken(session, insurer, candidate):
            return candidate
    raise _taken(f"{number}-R…", insurer)


async def renew_policy(
    session: AsyncSession, principal: Principal, policy_id: uuid.UUID, data: PolicyRenew
) -> Policy:
    """A draft renewal of an active or expired policy, for the next term."""
    old = await get_policy(session, principal, policy_id)
    await _check_renewable(session, old)
    try:
        start, end = next_term(old.start_date, old.end_date)
    except (ValueError, OverflowError) as exc:
        raise PolicyDatesInvalid("the next term would end past the year 9999") from exc
    start, end = data.start_date or start, data.end_date or end
    if end <= start:
        raise PolicyDatesInvalid(f"end_date {end} is not after start_date {start}")
    number = data.number or await _free_number(session, old.insurer, old.number)
    if await repo.number_taken(session, old.insurer, number):
        raise _taken(number, old.insurer)
    premium_minor = (
        old.premium_minor if data.premium is None else _minor(data.premium, old.currency)
    )
    row = Policy(
        number=number,
        insurer=old.insurer,
        client_id=old.client_id,
        deal_id=old.deal_id,
        product=old.product,
        premium_minor=premium_minor,
        currency=old.currency,
        payment_frequency=old.payment_frequency,
        start_date=start,
        end_date=end,
        status="draft",
        renewal_of=old.id,
        owner_id=old.owner_id,
    )
    await _insert(session, row)
    _announce_created(session, row, principal)
    return row
