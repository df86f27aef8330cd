"""Payments errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.api import BadRequest, Conflict, Crm2Error, NotFound, Unprocessable


class PaymentNotFound(NotFound):
    slug, title = "payments-payment-not-found", "Payment not found"


class ScheduleNotFound(NotFound):
    slug, title = "payments-schedule-not-found", "Payment schedule not found"


class RuleNotFound(NotFound):
    slug, title = "payments-commission-rule-not-found", "Commission rule not found"


class StatementNotFound(NotFound):
    slug, title = "payments-statement-not-found", "Bank statement not found"


class LineNotFound(NotFound):
    slug, title = "payments-statement-line-not-found", "Statement line not found"


class IdempotencyKeyRequired(BadRequest):
    slug = "payments-idempotency-key-required"
    title = "This request moves money: send an Idempotency-Key"


class Overpayment(Conflict):
    slug, title = "payments-overpayment", "The amount exceeds what is still due"


class OverRefund(Conflict):
    slug, title = "payments-over-refund", "The refund exceeds what was paid"


class ExternalIdTaken(Conflict):
    slug = "payments-external-id-taken"
    title = "The provider's external_id belongs to a record this request cannot answer with"


class InvalidTransition(Conflict):
    slug, title = "payments-invalid-transition", "The payment cannot change to that status"


class CurrencyMismatch(Unprocessable):
    slug, title = "payments-currency-mismatch", "The currency differs from the payment's"


class DirectionMismatch(Unprocessable):
    slug = "payments-direction-mismatch"
    title = "Money received cannot be booked on a payment paid out"


class InvalidAmount(Unprocessable):
    slug, title = "payments-invalid-amount", "The amount is not usable"


class InvalidReceivedAt(Unprocessable):
    slug, title = "payments-invalid-received-at", "The money cannot have moved at that time"


class InvalidRule(Unprocessable):
    slug, title = "payments-invalid-rule", "The commission rule is not usable"


class InvalidStatement(Unprocessable):
    slug, title = "payments-invalid-statement", "The bank statement cannot be read"


class StatementDuplicate(Conflict):
    slug = "payments-statement-duplicate"
    title = "Every line of the statement was uploaded before"


class LineAlreadyMatched(Conflict):
    slug, title = "payments-line-matched", "The statement line is matched already"


class LineNotMatched(Conflict):
    slug, title = "payments-line-not-matched", "The statement line is not matched"


class BadSignature(Crm2Error):
    status, slug, title = (
        401,
        "payments-webhook-signature",
        "The webhook signature is missing or wrong",
    )


class UnknownProvider(NotFound):
    slug, title = "payments-unknown-provider", "No webhook secret is configured for this provider"
