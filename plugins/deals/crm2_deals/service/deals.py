"""Deals: money checks, stages and status, moves with history; emits deal events."""

from __future__ import annotations

import operator
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.api import (
    Crm2Error,
    CsvColumns,
    NewRow,
    PageParams,
    Records,
    Unprocessable,
    acting_user,
    can_write_alone,
    export_list,
    from_minor,
    insert_together,
    insert_together_if,
    new_row,
    publish,
    publish_row,
    user_emails,
    utcnow,
)
from crm2_deals import csv_io, extensions
from crm2_deals.errors import (
    ClientGone,
    ClientIsArchived,
    InUse,
    LostReasonRequired,
    PipelineGone,
    PipelineNotFound,
    StageNotFound,
    StageNotInPipeline,
    StartMoved,
)
from crm2_deals.events import DealCreated, DealLost, DealStageChanged, DealUpdated, DealWon
from crm2_deals.extensions import vet, vetting
from crm2_deals.hookspecs import DealChange
from crm2_deals.models import Client, Deal, Stage, StageMove
from crm2_deals.repository import activities as activities_repo
from crm2_deals.repository import clients as clients_repo
from crm2_deals.repository import deals as repo
from crm2_deals.repository import pipelines as pipelines_repo
from crm2_deals.repository.pipelines import StageRef, Start, StartGuesses
from crm2_deals.schemas.deals import DealCreate, DealMove, DealPublic, DealUpdate
from crm2_deals.service.activities import add_system_activity, follow_owner
from crm2_deals.service.money import minor_units
from crm2_deals.service.owners import check_owner_sees_client, owner_for
from crm2_deals.visibility import RULES
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.api import AppContext, Visibility

EXPORT_PAGE_SIZE = 1000
# How often a create begins again when its start stopped being open meanwhile.
START_TRIES = 3
DEAL_EXPORT = CsvColumns(csv_io.DEAL_EXPORT_COLUMNS, version=1)


_SHOWN = tuple(name for name in DealPublic.model_fields if name != "value")
_READ_SHOWN = operator.attrgetter(*_SHOWN)  # every field at once, in C


def public_values(deal: Deal | Row[Any]) -> dict[str, Any]:
    """``public``'s fields, unvalidated: a list page validates its fifty at once
    (``page_response``), without a model built per row and then read again."""
    values = dict(zip(_SHOWN, _READ_SHOWN(deal), strict=True))
    values["value"] = from_minor(deal.value_minor, deal.currency)
    return values


def public(deal: Deal | Row[Any]) -> DealPublic:
    """A deal or a list page's plain row (``Repository.page_rows``), read by attribute."""
    return DealPublic.model_validate(public_values(deal))


def snapshot(deal: Deal) -> dict[str, Any]:
    """The deal's fields as extension hooks see them (``value`` as a decimal string)."""
    return public(deal).model_dump(mode="json")


DEALS = Records(repo.deals, RULES)
get_deal = DEALS.get


async def delete_deal(
    session: AsyncSession, principal: Principal, deal_id: uuid.UUID, if_match: str | None
) -> None:
    """Delete a deal and its activities; its policies stay (unlinked), and so do theirs."""
    deal = await DEALS.for_update(session, principal, deal_id, if_match)
    # an activity's deal cascades: one also about a policy keeps the policy's history
    await activities_repo.unlink_deal_of_policy_entries(session, deal.id)
    await repo.deals.delete_if_match(session, deal, if_match)


list_deals = DEALS.lister(repo.list_deals)


async def history(
    session: AsyncSession, principal: Principal, deal_id: uuid.UUID, page: PageParams
) -> tuple[list[StageMove], str | None]:
    """404 unless the deal is visible; then its stage moves, oldest first."""
    deal = await get_deal(session, principal, deal_id)
    return await repo.history(session, deal.id, page)


async def _stage_for(
    session: AsyncSession,
    pipeline_id: uuid.UUID | None,
    stage_id: uuid.UUID | None,
    found: Start | None = None,
) -> Stage | StageRef:
    """The stage a new deal starts in: given, or the first open stage of the pipeline
    (``found``: already read)."""
    if stage_id is not None:  # locked to the commit, as a move's (``move_deal``)
        stage = await pipelines_repo.stage_for_deal(session, stage_id)
        if stage is None:
            raise StageNotFound(f"no stage {stage_id}")
        if pipeline_id is not None and stage.pipeline_id != pipeline_id:
            raise StageNotInPipeline(f"stage {stage.name!r} is not in pipeline {pipeline_id}")
        return stage
    if found is None:
        found = await pipelines_repo.pipeline_with_first_open_stage(session, pipeline_id)
    if found is None:
        raise PipelineNotFound(f"no pipeline {pipeline_id}" if pipeline_id else "no pipelines")
    if found.stage is None:
        raise StageNotFound(f"pipeline {found.pipeline_name!r} has no open stage")
    return found.stage


async def _lost_reason(
    session: AsyncSession, reason_id: uuid.UUID | None, text: str | None
) -> tuple[uuid.UUID | None, str]:
    """A managed reason and/or free text; the stored text is the free text or the reason's name."""
    text = (text or "").strip()
    if reason_id is not None:
        reason = await pipelines_repo.get_lost_reason(session, reason_id)
        if reason is None or not reason.active:
            raise LostReasonRequired(f"{reason_id} is not one of the active lost reasons")
        return reason.id, text or reason.name
    if not text:
        raise LostReasonRequired("send lost_reason_id (GET …/lost-reasons) or lost_reason text")
    return None, text


def _closing(kind: str, now: datetime) -> dict[str, Any]:
    """Status and closing fields a stage of ``kind`` implies."""
    values: dict[str, Any] = {"status": kind, "closed_at": None if kind == "open" else now}
    if kind != "lost":
        values.update(lost_reason=None, lost_reason_id=None)
    return values


async def create_deal(
    session: AsyncSession,
    principal: Principal,
    data: DealCreate,
    *,
    context: AppContext,
    whole_transaction: bool = False,
    _tries: int = START_TRIES,
    _deal_id: uuid.UUID | None = None,
    _vetted: DealChange | None = None,
) -> Deal:
    """Create a deal; ``crm2_deals_validate_change`` may veto it (every caller passes
    ``context``: the REST route, a handler, a CLI command alike).

    ``whole_transaction``: the caller writes nothing else in the session's transaction
    (the REST route, whose session commits right after). The deal may then be written
    by a statement of its own before the commit (``_create_as_guessed``,
    ``_insert_at_start``); a caller that writes more must leave it ``False``, or its
    writes would not be atomic with the deal.
    """
    visibility = RULES.in_session(session, principal)
    if whole_transaction and _tries == START_TRIES:
        guessed = await _create_as_guessed(session, principal, data, context, visibility)
        if guessed is not None:
            return guessed
    start: Start | None = None
    if data.stage_id is None:
        # the usual create: whether the client is visible (and not archived), asked in
        # the pipeline's query
        seen = clients_repo.visible_open(visibility, data.client_id)
        start = await pipelines_repo.pipeline_with_first_open_stage(
            session, data.pipeline_id, also=seen
        )
        start_guesses(context).remember(data.pipeline_id, start)
    client_owner = None
    if start is None or not start.also:  # 404 (or 409 archived) first, as ever
        client_owner = await _client_owner(session, visibility, data.client_id)
    owner = await owner_for(session, principal, visibility, data.owner_id)
    if owner != acting_user(principal):  # given to someone else: may they see the client?
        if client_owner is None:
            client_owner = await _client_owner(session, visibility, data.client_id)
        await check_owner_sees_client(session, principal, owner, client_owner)
    currency, value_minor = _money(data, context)
    stage = await _stage_for(session, data.pipeline_id, data.stage_id, start)
    now = utcnow()
    values = _closing(stage.kind, now)
    if stage.kind == "lost":
        reason_id, text = await _lost_reason(session, data.lost_reason_id, data.lost_reason)
        values.update(lost_reason_id=reason_id, lost_reason=text)
    # a create that begins again keeps its id: the one the hook saw is the one written
    row, deal = _new_deal(data, stage, owner, currency, value_minor, now, values, _deal_id)
    if vetting(context):  # the snapshot, only for plugins that look at it
        to_stage = {"id": str(stage.id), "name": stage.name, "kind": stage.kind}
        change = DealChange("create", deal.id, {}, snapshot(deal), to_stage)
        # the hook sees what is written: a create that begins again is vetted again
        # only if what it would write moved (its start, the pipeline); else once per
        # request (a plugin counting or notifying on the hook would see one as two)
        if _vetted is None or _differs(_vetted, change):
            await vet(context, session, principal, change)
        _vetted = change
    # the deal, its first stage move and its event: one statement (one round trip)
    rows = [row, *_written_with(session, principal, deal, now)]
    if start is None:  # a stage given: read and locked by ``_stage_for`` already
        await _insert(session, rows, stage, data.client_id)
    elif not await _insert_at_start(
        session, data, start, rows, visibility, whole_transaction, client_owner is not None
    ):
        # the stage stopped being where deals start (made won or lost, say) since it
        # was read: begin again from where they start now
        start_guesses(context).remember(data.pipeline_id, None)
        if _tries <= 1:
            raise StartMoved("the pipeline's stages changed while the deal was created; retry")
        return await create_deal(
            session, principal, data, context=context, whole_transaction=whole_transaction,
            _tries=_tries - 1, _deal_id=deal.id, _vetted=_vetted,
        )  # fmt: skip
    _publish_closed(session, principal, deal)
    return deal


# What changes between two tries of one create without it being another deal.
_EACH_TRY = frozenset({"created_at", "updated_at", "stage_entered_at", "closed_at"})


def _differs(vetted: DealChange, change: DealChange) -> bool:
    """Would ``change`` write something else than the ``vetted`` one did (stage, pipeline,
    status, owner…)? Only the times each try takes anew do not count."""
    if vetted.to_stage != change.to_stage:
        return True
    keys = (vetted.after.keys() | change.after.keys()) - _EACH_TRY
    return any(vetted.after.get(k) != change.after.get(k) for k in keys)


async def _insert_at_start(
    session: AsyncSession,
    data: DealCreate,
    start: Start,
    rows: list[NewRow],
    visibility: Visibility,
    whole_transaction: bool,
    client_locked: bool,
) -> bool:
    """Write a new deal's rows if the stage ``start`` read (without a lock: outside
    the transaction on PostgreSQL) is still where the deal starts, checked under the
    stage's share lock as a given stage's (``stage_for_deal``); ``False``: nothing
    written. In the statement that writes them when it may go alone (as the guessed
    create's: no round trip added); else a locked read of the stage first.

    The client too is checked again under its share lock (``clients_repo.
    visible_open``; ``client_locked``: read so already): a hand-over of the client
    waits for the deal, or the deal for the hand-over (then 404)."""
    stage = start.stage
    assert stage is not None  # ``_stage_for`` refused a pipeline without an open stage
    if whole_transaction and can_write_alone(session):
        seen = clients_repo.visible_open(visibility, data.client_id, shared=True)
        condition, params = pipelines_repo.start_still(data.pipeline_id, stage, seen)
        if await insert_together_if(session, rows, condition, params):
            return True
        # nothing written: the start moved, the client went, or the rows cannot go alone
    if not client_locked and session.get_bind().dialect.name == "postgresql":
        # the start's read saw the client outside any lock (SQLite: in the transaction,
        # whose writers take turns)
        await _client_owner(session, visibility, data.client_id)
    if not await pipelines_repo.start_still_open(session, stage):
        return False
    await _insert(session, rows, stage, data.client_id)
    return True


async def _insert(
    session: AsyncSession, rows: list[NewRow], stage: Stage | StageRef, client_id: uuid.UUID
) -> None:
    """``insert_together`` after the stage was read (and locked); its pipeline or the
    client deleted since (by a statement this transaction could not wait for, or by
    the transaction itself: a validation hook) is a 409 naming the pipeline or the
    client, not the foreign key's generic "a concurrent change" one. The locked read
    began the transaction, so the rows are sent here, not held to the commit
    (``insert_together``)."""
    try:
        await insert_together(session, rows)
    except IntegrityError as exc:
        if await _start_gone(session, exc, stage):
            raise PipelineGone(
                f"pipeline {stage.pipeline_id} (or its stage {stage.name!r}) was deleted "
                "while the deal was created; nothing was written: choose another pipeline"
            ) from exc
        if await _client_gone(session, exc, client_id):
            raise ClientGone(
                f"client {client_id} was deleted while the deal was created; nothing was "
                "written: choose another client",
                client={"id": str(client_id)},
            ) from exc
        raise


def _names(exc: IntegrityError, *constraints: str) -> bool:
    """On PostgreSQL the transaction is aborted, nothing can be read: the failed
    constraint's name tells."""
    return any(f'{name}"' in str(exc.orig) for name in constraints)


async def _start_gone(session: AsyncSession, exc: IntegrityError, stage: Stage | StageRef) -> bool:
    if session.get_bind().dialect.name == "postgresql":
        return _names(exc, "_deals_pipeline", "_deals_stage")
    # SQLite names no constraint; a failed statement undoes only itself, so ask
    return "FOREIGN KEY" in str(exc.orig) and not await pipelines_repo.stage_and_pipeline_exist(
        session, stage.id
    )


async def _client_gone(session: AsyncSession, exc: IntegrityError, client_id: uuid.UUID) -> bool:
    if session.get_bind().dialect.name == "postgresql":
        return _names(exc, "fk_deals_deal_client_id_deals_client")
    return "FOREIGN KEY" in str(exc.orig) and not await clients_repo.client_exists(
        session, client_id
    )


async def _client_owner(
    session: AsyncSession, visibility: Visibility, client_id: uuid.UUID
) -> uuid.UUID:
    """The owner of the client a deal is written on, share-locked to the commit
    (``clients_repo.shared_client``); 404 unless visible, 409 if archived."""
    client = await clients_repo.shared_client_or_404(session, visibility, client_id)
    _refuse_archived(client)
    return client.owner_id


def _refuse_archived(client: Client) -> None:
    """An archived client takes no new deals (nor deals moved to it): 409 naming it."""
    if client.archived:
        raise ClientIsArchived(
            f"client {client.name!r} is archived: unarchive it (PATCH archived=false) "
            "to give it deals",
            client={"id": str(client.id), "name": client.name},
        )


def start_guesses(context: AppContext) -> StartGuesses:
    """This application's guesses of where new deals start (made on first use)."""
    guesses = context.find(StartGuesses)
    if guesses is None:
        guesses = StartGuesses()
        context.provide(StartGuesses, guesses)
    return guesses


async def _create_as_guessed(
    session: AsyncSession,
    principal: Principal,
    data: DealCreate,
    context: AppContext,
    visibility: Visibility,
) -> Deal | None:
    """The usual create (no stage, owner or vetting plugin named) in one round trip:
    the deal starts in the stage this process last read for its pipeline, and its
    statement writes only if that stage is still the first open one and the client
    visible (``insert_together_if``). ``None``: nothing written, for any reason (no
    guess, a wrong one, an invisible client, a value the usual path refuses, a session
    that has begun); ``create_deal`` then takes the usual path, which answers as ever."""
    if data.stage_id is not None or data.owner_id is not None or vetting(context):
        return None
    guesses = start_guesses(context)
    guess = guesses.get(data.pipeline_id)
    if guess is None or not can_write_alone(session):
        return None
    try:  # refused here, they are refused again on the usual path, in its order
        owner = await owner_for(session, principal, visibility, None)
        currency, value_minor = _money(data, context)
    except Crm2Error:
        return None
    now = utcnow()
    row, deal = _new_deal(data, guess, owner, currency, value_minor, now, _closing("open", now))
    seen = clients_repo.visible_open(visibility, data.client_id, shared=True)
    condition, params = pipelines_repo.start_still(data.pipeline_id, guess, seen)
    rows = [row, *_written_with(session, principal, deal, now)]
    if await insert_together_if(session, rows, condition, params):
        return deal
    guesses.remember(data.pipeline_id, None)  # read it again
    return None


def _money(data: DealCreate, context: AppContext) -> tuple[str, int]:
    currency = data.currency or context.plugin_settings("deals").default_currency
    return currency, minor_units(data.value or Decimal(0), currency, "a deal value")


def _new_deal(
    data: DealCreate,
    stage: Stage | StageRef,
    owner: uuid.UUID,
    currency: str,
    value_minor: int,
    now: datetime,
    values: dict[str, Any],
    deal_id: uuid.UUID | None = None,
) -> tuple[NewRow, Deal]:
    """The new deal's row, and the deal as written (outside the session: an ORM object
    built by ``__init__`` costs more than the row's INSERT)."""
    if deal_id is not None:
        values = {**values, "id": deal_id}
    row = new_row(
        Deal,
        title=data.title,
        client_id=data.client_id,
        pipeline_id=stage.pipeline_id,
        stage_id=stage.id,
        value_minor=value_minor,
        currency=currency,
        owner_id=owner,
        source=data.source,
        expected_close_date=data.expected_close_date,
        stage_entered_at=now,
        **values,
    )
    return row, Deal.model_construct(**row.values)


def _written_with(
    session: AsyncSession, principal: Principal, deal: Deal, now: datetime
) -> list[NewRow]:
    """What a new deal's statement writes besides the deal: its first stage move and
    its ``created`` event."""
    move = new_row(
        StageMove, deal_id=deal.id, to_stage_id=deal.stage_id, moved_by=acting_user(principal),
        moved_at=now,
    )  # fmt: skip
    created = DealCreated(
        title=deal.title,
        client_id=deal.client_id,
        pipeline_id=deal.pipeline_id,
        stage_id=deal.stage_id,
        value=str(from_minor(deal.value_minor, deal.currency)),
        currency=deal.currency,
        owner_id=deal.owner_id,
    )
    return [move, publish_row(session, created, subject=deal.id, actor=principal)]


def _publish_closed(session: AsyncSession, principal: Principal, deal: Deal) -> None:
    if deal.status == "won":
        value = str(from_minor(deal.value_minor, deal.currency))
        won = DealWon(
            value=value, currency=deal.currency, client_id=deal.client_id, owner_id=deal.owner_id
        )
        publish(session, won, subject=deal.id, actor=principal)
    elif deal.status == "lost":
        lost = DealLost(
            lost_reason=deal.lost_reason or "", client_id=deal.client_id, owner_id=deal.owner_id
        )
        publish(session, lost, subject=deal.id, actor=principal)


async def update_deal(
    session: AsyncSession,
    principal: Principal,
    deal_id: uuid.UUID,
    if_match: str,
    data: DealUpdate,
    *,
    context: AppContext,
) -> Deal:
    """Change a deal's fields; a change other plugins veto is 422, nothing written."""
    visibility = RULES.in_session(session, principal)
    deal = await DEALS.for_update(session, principal, deal_id, if_match)
    sent = data.model_dump(exclude_unset=True)
    values: dict[str, Any] = {k: sent[k] for k in ("title", "source") if sent.get(k) is not None}
    if "expected_close_date" in sent:
        values["expected_close_date"] = sent["expected_close_date"]
    client_owner = None
    if sent.get("client_id") is not None:
        client = await clients_repo.shared_client_or_404(session, visibility, sent["client_id"])
        if client.id != deal.client_id:
            _refuse_archived(client)
        if client.id != deal.client_id and await repo.has_policies(session, deal.id):
            # a policy is the client's contract: it cannot follow the deal, nor stay
            # linked to a deal of another client
            raise InUse("the deal has policies of its client; unlink them to move it")
        values["client_id"], client_owner = client.id, client.owner_id
    if sent.get("owner_id") is not None:
        values["owner_id"] = await owner_for(
            session, principal, visibility, sent["owner_id"], current=deal.owner_id
        )
    owner = values.get("owner_id", deal.owner_id)
    if owner != deal.owner_id or values.get("client_id", deal.client_id) != deal.client_id:
        if client_owner is None:
            client_owner = await clients_repo.client_owner(session, deal.client_id)
        await check_owner_sees_client(session, principal, owner, client_owner)
    if owner != deal.owner_id:
        await follow_owner(session, owner, deal_id=deal.id)
    if sent.get("value") is not None or sent.get("currency") is not None:
        currency = sent.get("currency") or deal.currency
        amount = (
            sent["value"]
            if sent.get("value") is not None
            else from_minor(deal.value_minor, deal.currency)
        )
        values.update(currency=currency, value_minor=minor_units(amount, currency, "a deal value"))
    if "lost_reason" in sent or "lost_reason_id" in sent:
        if deal.status != "lost":
            raise Unprocessable("only a lost deal has a lost reason")
        reason_id, text = await _lost_reason(session, data.lost_reason_id, data.lost_reason)
        values.update(lost_reason_id=reason_id, lost_reason=text)
    before = snapshot(deal)
    after = {**before, **{k: v for k, v in values.items() if k != "value_minor"}}
    if "value_minor" in values:
        after["value"] = str(from_minor(values["value_minor"], values["currency"]))
    after = DealPublic.model_validate(after).model_dump(mode="json")
    differing = tuple(sorted(k for k in after if after[k] != before[k]))
    if differing:
        change = DealChange("update", deal.id, before, after, changed=differing)
        await vet(context, session, principal, change)
    before_owner = deal.owner_id
    changed = await repo.deals.update(session, deal, values)
    if not changed:
        return deal
    if "client_id" in changed:  # its timeline goes with it (and is not deleted with the old client)
        await activities_repo.move_to_client(session, deal.id, deal.client_id)
    names = sorted("value" if k == "value_minor" else k for k in changed)
    previous = before_owner if "owner_id" in changed else None
    event = DealUpdated(changed=names, owner_id=deal.owner_id, previous_owner_id=previous)
    publish(session, event, subject=deal.id, actor=principal)
    return deal


async def move_deal(
    session: AsyncSession,
    principal: Principal,
    deal_id: uuid.UUID,
    if_match: str | None,
    data: DealMove,
    *,
    context: AppContext,
) -> Deal:
    """Move within the pipeline: status follows the stage; won/lost close, open reopens."""
    deal = await DEALS.for_update(session, principal, deal_id, if_match)
    # locked to the commit: the status written is the kind the stage has then
    target = await pipelines_repo.stage_for_deal(session, data.stage_id)
    if target is None:
        raise StageNotFound(f"no stage {data.stage_id}")
    if target.pipeline_id != deal.pipeline_id:
        raise StageNotInPipeline(f"stage {target.name!r} belongs to another pipeline")
    if target.id == deal.stage_id:
        return deal
    source = await pipelines_repo.get_stage(session, deal.stage_id)
    now = utcnow()
    values = _closing(target.kind, now)
    if target.kind == "lost":
        reason_id, text = await _lost_reason(session, data.lost_reason_id, data.lost_reason)
        values.update(lost_reason_id=reason_id, lost_reason=text)
    if target.kind == deal.status and target.kind != "open":
        values["closed_at"] = deal.closed_at  # won → another won stage: still closed then
    values.update(stage_id=target.id, stage_entered_at=now, updated_at=now)
    before = snapshot(deal)
    after = {**before, "stage_id": str(target.id), "status": values["status"]}
    to_stage = {"id": str(target.id), "name": target.name, "kind": target.kind}
    change = DealChange("move", deal.id, before, after, to_stage, ("stage_id", "status"))
    await vet(context, session, principal, change)
    seconds = max(0, int((now - deal.stage_entered_at).total_seconds()))
    from_id, from_name = deal.stage_id, source.name if source else "?"
    await repo.deals.update(session, deal, values, only_changed=False)
    session.add(
        StageMove(
            deal_id=deal.id,
            from_stage_id=from_id,
            to_stage_id=target.id,
            moved_by=acting_user(principal),
            moved_at=now,
            seconds_in_previous=seconds,
        )
    )
    subject = f"Moved from {from_name} to {target.name}"
    if deal.status == "won":
        subject = f"Deal won ({subject.lower()})"
    elif deal.status == "lost":
        subject = f"Deal lost: {deal.lost_reason} ({subject.lower()})"
    add_system_activity(
        session, client_id=deal.client_id, owner_id=deal.owner_id, subject=subject, deal_id=deal.id
    )
    changed = DealStageChanged(
        from_stage_id=from_id, to_stage_id=target.id, status=deal.status,
        owner_id=deal.owner_id, version=deal.version,
    )  # fmt: skip
    publish(session, changed, subject=deal.id, actor=principal)
    _publish_closed(session, principal, deal)
    return deal


# Who a hand-over is vetted as when the system (not a signed-in user) asked for it.
SYSTEM_PRINCIPAL = Principal(
    id=uuid.UUID(int=0), kind="system", roles=frozenset(), permissions=frozenset({"*"})
)


async def vet_owner_handover(
    session: AsyncSession,
    context: AppContext,
    actor: Principal | None,
    from_user: uuid.UUID,
    to_user: uuid.UUID,
) -> None:
    """Put each of ``from_user``'s deals going to ``to_user`` to the veto hook (an ``update``
    of ``owner_id``), before the hand-over writes anything; the first refusal is a 422."""
    principal = actor or SYSTEM_PRINCIPAL
    for deal in await repo.owned_by(session, from_user):
        before = snapshot(deal)
        after = {**before, "owner_id": str(to_user)}
        change = DealChange("update", deal.id, before, after, changed=("owner_id",))
        await vet(context, session, principal, change)


TIMELINE_LIMIT = 200


async def timeline(
    session: AsyncSession, principal: Principal, deal_id: uuid.UUID, context: AppContext
) -> list[dict[str, Any]]:
    """404 unless visible; the deal's stage moves and other plugins' entries, newest first."""
    deal = await get_deal(session, principal, deal_id)
    # the newest moves: a deal moved more than the limit shows its latest, not its first
    moves = await repo.latest_moves(session, deal.id, TIMELINE_LIMIT)
    names, _ = await repo.stage_and_pipeline_names(session)
    own = [
        {
            "at": m.moved_at,
            "kind": "stage_move",
            "title": f"Moved to {names.get(m.to_stage_id, '?')}",
            "source": "deals",
        }
        for m in moves
    ]
    others = await extensions.timeline(context, session, snapshot(deal), principal)
    merged = sorted([*own, *others], key=lambda e: e["at"], reverse=True)
    return merged[:TIMELINE_LIMIT]


async def extra(
    session: AsyncSession, principal: Principal, deal_id: uuid.UUID, context: AppContext
) -> dict[str, dict[str, Any]]:
    """404 unless visible; then the fields other plugins show with it."""
    deal = await get_deal(session, principal, deal_id)
    return await extensions.extra_fields(context, session, snapshot(deal), principal)


def value_bounds(
    currency: str | None, value_min: Decimal | None, value_max: Decimal | None
) -> tuple[int | None, int | None]:
    """A value range compares amounts of one currency: it needs ``currency``."""
    if value_min is None and value_max is None:
        return None, None
    if currency is None:
        raise Unprocessable("value_min/value_max need a currency parameter")

    def bound(value: Decimal | None) -> int | None:
        return None if value is None else minor_units(value, currency, "a value bound")

    return bound(value_min), bound(value_max)


def with_value_bounds(filters: repo.DealFilters) -> repo.DealFilters:
    """``filters`` with the value range in the currency's minor units (422 without one)."""
    if not (filters.value_min or filters.value_max):
        return filters  # the usual list: nothing to convert, no copy of the filters
    low, high = value_bounds(
        filters.currency,
        Decimal(filters.value_min) if filters.value_min else None,
        Decimal(filters.value_max) if filters.value_max else None,
    )
    return replace(filters, value_min_minor=low, value_max_minor=high)


def export_deals(
    session_factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    filters: repo.DealFilters,
    sort: str,
) -> AsyncIterator[str]:
    """The list as CSV chunks, one keyset page at a time, each page in a short session."""
    names: dict[str, dict[uuid.UUID, str]] = {}

    async def rows(session: AsyncSession, items: list[Row[Any]]) -> list[list[Any]]:
        if not names:
            names["stages"], names["pipelines"] = await repo.stage_and_pipeline_names(session)
        clients = await repo.client_names(session, visibility, {d.client_id for d in items})
        owners = await user_emails(session, {d.owner_id for d in items})
        stages, pipelines = names["stages"], names["pipelines"]
        return [
            [
                d.id, d.title, d.client_id, clients.get(d.client_id),
                pipelines.get(d.pipeline_id), stages.get(d.stage_id), d.status,
                from_minor(d.value_minor, d.currency), d.currency, owners.get(d.owner_id),
                d.source, d.expected_close_date, d.lost_reason, d.closed_at,
                d.created_at, d.updated_at,
            ]
            for d in items
        ]  # fmt: skip

    visibility = RULES.in_session(session_factory, principal)
    return export_list(
        session_factory, DEAL_EXPORT, repo.list_deals, visibility, filters, sort, rows,
        EXPORT_PAGE_SIZE,
    )  # fmt: skip
