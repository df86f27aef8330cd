"""Deals errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.api import Conflict, NotFound, Unprocessable


class ClientNotFound(NotFound):
    slug, title = "deals-client-not-found", "Client not found"


class ContactNotFound(NotFound):
    slug, title = "deals-contact-not-found", "Contact not found"


class PipelineNotFound(NotFound):
    slug, title = "deals-pipeline-not-found", "Pipeline not found"


class StageNotFound(NotFound):
    slug, title = "deals-stage-not-found", "Stage not found"


class DealNotFound(NotFound):
    slug, title = "deals-deal-not-found", "Deal not found"


class PolicyNotFound(NotFound):
    slug, title = "deals-policy-not-found", "Policy not found"


class ActivityNotFound(NotFound):
    slug, title = "deals-activity-not-found", "Activity not found"


class ClientIsArchived(Conflict):
    slug, title = "deals-client-archived", "The client is archived"


class DuplicateClient(Conflict):
    slug, title = "deals-duplicate-client", "A client with this e-mail or tax id exists"


class StageNotInPipeline(Unprocessable):
    slug, title = "deals-stage-not-in-pipeline", "The stage belongs to another pipeline"


class LostReasonRequired(Unprocessable):
    slug, title = "deals-lost-reason-required", "A lost deal needs a lost reason"


class InvalidMoney(Unprocessable):
    slug, title = "deals-invalid-money", "Invalid amount for the currency"


class PolicyNumberTaken(Conflict):
    slug, title = "deals-policy-number-taken", "This insurer already has a policy with this number"


class InvalidPolicyTransition(Conflict):
    slug, title = "deals-invalid-policy-transition", "The policy cannot change to that status"


class InUse(Conflict):
    slug, title = "deals-in-use", "The record is still referenced"


class PipelineGone(Conflict):
    slug, title = "deals-pipeline-gone", "The deal's pipeline was deleted meanwhile"


class ClientGone(Conflict):
    slug, title = "deals-client-gone", "The deal's client was deleted meanwhile"


class StartMoved(Conflict):
    """A new deal's first stage changed kind (or went) while it was created, again and again."""

    slug, title = "deals-start-moved", "Where new deals start changed meanwhile"


class ChangeVetoed(Unprocessable):
    slug, title = "deals-change-vetoed", "Another plugin refused this change"


class ActivityLinkInvalid(Unprocessable):
    slug, title = "deals-activity-link-invalid", "The activity's client, deal or policy do not fit"


class SystemActivityReadOnly(Conflict):
    slug, title = "deals-system-activity-read-only", "System entries cannot be changed"


class PolicyLinkInvalid(Unprocessable):
    slug, title = "deals-policy-link-invalid", "The policy's client, deal or renewal do not fit"


class PolicyDatesInvalid(Unprocessable):
    slug, title = "deals-policy-dates-invalid", "end_date must be after start_date"


class RenewalExists(Conflict):
    slug, title = "deals-renewal-exists", "The policy already has an open renewal"


class OwnerCannotSeeClient(Unprocessable):
    slug, title = "deals-owner-cannot-see-client", "The owner cannot see the record's client"


class PolicyClosed(Conflict):
    slug, title = "deals-policy-closed", "An expired or cancelled policy's term is history"
