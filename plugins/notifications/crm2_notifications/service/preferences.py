"""A user's preferences: zone, quiet hours, and per channel / event type: immediate, digest, off."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import acting_user, check_version, update_versioned
from crm2_hookspecs import Principal
from crm2_notifications import clock, quiet
from crm2_notifications.channels import registry
from crm2_notifications.errors import InvalidPreference
from crm2_notifications.models import Preference, UserSettings
from crm2_notifications.schemas.feed import PreferenceIn, PreferencesIn, PreferencesPublic


async def _settings(session: AsyncSession, principal: Principal) -> UserSettings:
    user_id = acting_user(principal)
    row = await session.get(UserSettings, user_id)
    if row is None:
        row = UserSettings(user_id=user_id)
        session.add(row)
        await session.flush()
    return row


def _quiet_hours(row: UserSettings) -> tuple[str | None, str | None]:
    """The stored quiet hours; a pair with start == end (accepted before it was refused)
    meant none, and still does: shown as none, so a client sending back what it read
    is not refused for it (``quiet.release_at`` ignores such a pair too)."""
    if row.quiet_start is not None and row.quiet_start == row.quiet_end:
        return None, None
    return row.quiet_start, row.quiet_end


async def read(session: AsyncSession, context: Any, principal: Principal) -> PreferencesPublic:
    # a GET writes nothing: a user who never saved preferences sees the defaults
    row = await session.get(UserSettings, acting_user(principal)) or UserSettings(
        user_id=acting_user(principal)
    )
    stmt = select(Preference).where(col(Preference.user_id) == row.user_id)
    prefs = (
        await session.execute(stmt.order_by(col(Preference.channel), col(Preference.event_type)))
    ).scalars()
    default = context.plugin_settings("notifications").default_timezone
    quiet_start, quiet_end = _quiet_hours(row)
    return PreferencesPublic(
        timezone=row.timezone or default,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        rules=[
            PreferenceIn(channel=p.channel, event_type=p.event_type, mode=p.mode) for p in prefs
        ],
        channels=registry(context).names(),
        version=row.version,
    )


async def update(
    session: AsyncSession, context: Any, principal: Principal, if_match: str, data: PreferencesIn
) -> PreferencesPublic:
    row = await _settings(session, principal)
    version = check_version(if_match, row.version)
    sent = data.model_dump(exclude_unset=True)
    values: dict[str, Any] = {"updated_at": clock.now(context)}
    # a null is refused, never taken as "keep it" (quiet_start/quiet_end: null is "none")
    for name, instead in (("timezone", "a zone such as Europe/Berlin"), ("rules", "[] for none")):
        if name in sent and sent[name] is None:
            raise InvalidPreference(f"{name} cannot be null: send {instead}, or leave it out")
    if sent.get("timezone") is not None:
        try:
            quiet.zone_strict(sent["timezone"])
        except ValueError as exc:
            raise InvalidPreference(str(exc)) from exc
        values["timezone"] = sent["timezone"]
    if "quiet_start" in sent or "quiet_end" in sent:
        stored_start, stored_end = _quiet_hours(row)
        start = sent.get("quiet_start", stored_start)
        end = sent.get("quiet_end", stored_end)
        if (start is None) != (end is None):
            raise InvalidPreference("quiet_start and quiet_end go together (or both null)")
        if start is not None and start == end:
            raise InvalidPreference(
                f"quiet_start and quiet_end are both {start}: that is no quiet hours at all; "
                "omit both (or send both null) for none"
            )
        values["quiet_start"], values["quiet_end"] = start, end
    rules = _rules(context, data.rules) if data.rules is not None else None
    # the version is a condition of the UPDATE itself: of two PATCHes with the same
    # If-Match the second waits for the first, then finds no row at its version (412)
    # instead of overwriting it (a lost update)
    user = col(UserSettings.user_id) == row.user_id
    await update_versioned(session, UserSettings, user, version, values)
    await session.refresh(row)
    if rules is not None:
        await session.execute(delete(Preference).where(col(Preference.user_id) == row.user_id))
        session.add_all(
            Preference(user_id=row.user_id, channel=p.channel, event_type=p.event_type, mode=p.mode)
            for p in rules
        )
    await session.flush()
    return await read(session, context, principal)


def _rules(context: Any, rules: list[PreferenceIn]) -> list[PreferenceIn]:
    """The rules as sent, checked: known channels, each pair once."""
    known = set(registry(context).names()) | {"*"}
    unknown = sorted({p.channel for p in rules} - known)
    if unknown:
        raise InvalidPreference(f"unknown channel(s) {unknown}")
    seen = {(p.channel, p.event_type) for p in rules}
    if len(seen) != len(rules):
        raise InvalidPreference("each channel/event_type pair may appear once")
    return rules
