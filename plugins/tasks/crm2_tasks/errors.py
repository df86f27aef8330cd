"""Tasks errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.api import Conflict, NotFound, Unprocessable


class TaskNotFound(NotFound):
    slug, title = "tasks-task-not-found", "Task not found"


class CalendarNotFound(NotFound):
    slug, title = "tasks-calendar-not-found", "Calendar not found"


class SlaPolicyNotFound(NotFound):
    slug, title = "tasks-sla-policy-not-found", "SLA policy not found"


class RuleNotFound(NotFound):
    slug, title = "tasks-rule-not-found", "Automation rule not found"


class FeedNotFound(NotFound):
    slug, title = "tasks-feed-not-found", "No calendar feed with this token"


class InvalidCalendar(Unprocessable):
    slug, title = "tasks-invalid-calendar", "The business calendar is not usable"


class InvalidRecurrence(Unprocessable):
    slug, title = "tasks-invalid-recurrence", "The recurrence rule is not usable"


class InvalidPolicy(Unprocessable):
    slug, title = "tasks-invalid-sla-policy", "The SLA policy is not usable"


class InvalidRule(Unprocessable):
    slug, title = "tasks-invalid-rule", "The automation rule is not usable"


class InvalidLink(Unprocessable):
    slug, title = "tasks-invalid-link", "The linked record does not exist or is not visible to you"


class InvalidAssignee(Unprocessable):
    slug, title = "tasks-invalid-assignee", "The assignee is not an active user you may assign to"


class AssigneeNotPermitted(Unprocessable):
    slug, title = (
        "tasks-assignee-not-permitted",
        "The assignee's roles do not grant tasks:read: they could never see the task",
    )


class InvalidTransition(Conflict):
    slug, title = "tasks-invalid-transition", "The task cannot change to that status"


class EditConflict(Conflict):
    slug, title = "tasks-edit-conflict", "The task kept changing while this request changed it"


class NameTaken(Conflict):
    slug, title = (
        "tasks-name-taken",
        "Another calendar, SLA policy or rule already has this name (in any case)",
    )


class CalendarInUse(Conflict):
    slug, title = "tasks-calendar-in-use", "The calendar is still used by an SLA policy"


class TaskChangeVetoed(Unprocessable):
    slug, title = "tasks-change-vetoed", "Another plugin refused this change"
