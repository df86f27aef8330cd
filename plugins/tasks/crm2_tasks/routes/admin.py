"""Admin routes: business calendars, SLA policies and automation rules."""

from __future__ import annotations

import uuid

from fastapi import Response, status

from crm2_core.api import (
    APIRouter,
    ContextDep,
    IfMatchDep,
    OptionalIfMatch,
    Page,
    PageDep,
    SessionDep,
    create_route,
    created,
    list_route,
    page_response,
    present,
)
from crm2_tasks.models import AutomationRule, Calendar, SlaPolicy
from crm2_tasks.repository import admin as repo
from crm2_tasks.routes.deps import TasksAdmin
from crm2_tasks.schemas.admin import (
    AutomationRuleCreate,
    AutomationRulePublic,
    AutomationRuleUpdate,
    CalendarCreate,
    CalendarPublic,
    CalendarUpdate,
    SlaPolicyCreate,
    SlaPolicyPublic,
    SlaPolicyUpdate,
)
from crm2_tasks.service import automations, calendars, policies

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks admin"])
BASE = "/api/v1/tasks"


def _no_content() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- calendars ---------------------------------------------------------------------------


list_route(
    router, "/calendars", CalendarPublic.model_validate, response_model=CalendarPublic,
    permission="tasks:admin", fetch=lambda session, page: repo.page(session, Calendar, page),
    with_principal=False, name="list_calendars", doc="Business calendars by name.",
)  # fmt: skip
create_route(
    router, "/calendars", CalendarPublic.model_validate, response_model=CalendarPublic,
    permission="tasks:admin", body=CalendarCreate, create=calendars.create_calendar,
    location="/calendars/{id}", with_principal=False, name="create_calendar",
    doc="A calendar: working hours per weekday in a time zone, and holidays.",
)  # fmt: skip


@router.get("/calendars/{calendar_id}", response_model=CalendarPublic)
async def get_calendar(
    calendar_id: uuid.UUID, _: TasksAdmin, session: SessionDep, response: Response
) -> CalendarPublic:
    """One calendar."""
    row = await calendars.get_calendar(session, calendar_id)
    return present(response, CalendarPublic.model_validate(row))


@router.patch("/calendars/{calendar_id}", response_model=CalendarPublic)
async def update_calendar(
    calendar_id: uuid.UUID,
    body: CalendarUpdate,
    if_match: IfMatchDep,
    _: TasksAdmin,
    session: SessionDep,
    response: Response,
) -> CalendarPublic:
    """Change a calendar (If-Match required); running SLA timers keep their deadlines."""
    row = await calendars.update_calendar(session, calendar_id, if_match, body)
    return present(response, CalendarPublic.model_validate(row))


@router.delete("/calendars/{calendar_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_calendar(
    calendar_id: uuid.UUID, _: TasksAdmin, session: SessionDep, if_match: OptionalIfMatch = None
) -> Response:
    """Delete a calendar no SLA policy uses (409 otherwise); If-Match optional."""
    await calendars.delete_calendar(session, calendar_id, if_match)
    return _no_content()


# -- SLA policies ------------------------------------------------------------------------


list_route(
    router, "/sla-policies", SlaPolicyPublic.model_validate, response_model=SlaPolicyPublic,
    permission="tasks:admin", fetch=lambda session, page: repo.page(session, SlaPolicy, page),
    with_principal=False, name="list_policies", doc="SLA policies by name.",
)  # fmt: skip
create_route(
    router, "/sla-policies", SlaPolicyPublic.model_validate, response_model=SlaPolicyPublic,
    permission="tasks:admin", body=SlaPolicyCreate, create=policies.create_policy,
    location="/sla-policies/{id}", with_principal=False, name="create_policy",
    doc="A policy: response / resolution targets for a priority and/or tag, and escalation.",
)  # fmt: skip


@router.get("/sla-policies/{policy_id}", response_model=SlaPolicyPublic)
async def get_policy(
    policy_id: uuid.UUID, _: TasksAdmin, session: SessionDep, response: Response
) -> SlaPolicyPublic:
    """One SLA policy."""
    row = await policies.get_policy(session, policy_id)
    return present(response, SlaPolicyPublic.model_validate(row))


@router.patch("/sla-policies/{policy_id}", response_model=SlaPolicyPublic)
async def update_policy(
    policy_id: uuid.UUID,
    body: SlaPolicyUpdate,
    if_match: IfMatchDep,
    _: TasksAdmin,
    session: SessionDep,
    response: Response,
) -> SlaPolicyPublic:
    """Change a policy (If-Match required); applies to tasks created afterwards."""
    row = await policies.update_policy(session, policy_id, if_match, body)
    return present(response, SlaPolicyPublic.model_validate(row))


@router.delete("/sla-policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_policy(
    policy_id: uuid.UUID, _: TasksAdmin, session: SessionDep, if_match: OptionalIfMatch = None
) -> Response:
    """Delete a policy and the timers it started (deactivate it to keep them); If-Match
    optional."""
    await policies.delete_policy(session, policy_id, if_match)
    return _no_content()


# -- automation rules --------------------------------------------------------------------


@router.get("/rules", response_model=Page[AutomationRulePublic])
async def list_rules(
    _: TasksAdmin, session: SessionDep, context: ContextDep, page: PageDep
) -> Response:
    """Automation rules by name; ``active`` is false when no enabled plugin emits ``on``."""
    rows, cursor = await repo.page(session, AutomationRule, page)
    declared = automations.declared_event_types(context)
    return page_response(
        AutomationRulePublic, [automations.public(r, declared) for r in rows], cursor
    )


@router.post("/rules", response_model=AutomationRulePublic, status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: AutomationRuleCreate,
    admin: TasksAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> AutomationRulePublic:
    """A rule: on an event type, when conditions hold, create a task from templates."""
    row = await automations.create_rule(session, context, body, actor=admin)
    public = automations.public(row, automations.declared_event_types(context))
    return created(response, f"{BASE}/rules/{row.id}", public)


@router.get("/rules/{rule_id}", response_model=AutomationRulePublic)
async def get_rule(
    rule_id: uuid.UUID, _: TasksAdmin, session: SessionDep, context: ContextDep, response: Response
) -> AutomationRulePublic:
    """One automation rule."""
    row = await automations.get_rule(session, rule_id)
    return present(response, automations.public(row, automations.declared_event_types(context)))


@router.patch("/rules/{rule_id}", response_model=AutomationRulePublic)
async def update_rule(
    rule_id: uuid.UUID,
    body: AutomationRuleUpdate,
    if_match: IfMatchDep,
    admin: TasksAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> AutomationRulePublic:
    """Change a rule, e.g. switch a shipped one on with {"enabled": true} (If-Match required)."""
    row = await automations.update_rule(session, context, rule_id, if_match, body, actor=admin)
    return present(response, automations.public(row, automations.declared_event_types(context)))


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(
    rule_id: uuid.UUID, admin: TasksAdmin, session: SessionDep, if_match: OptionalIfMatch = None
) -> Response:
    """Delete a rule; the tasks it created stay. If-Match optional."""
    await automations.delete_rule(session, rule_id, if_match, actor=admin)
    return _no_content()
