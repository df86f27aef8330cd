"""Notifications errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.api import Conflict, Forbidden, NotFound, Unprocessable


class NotificationNotFound(NotFound):
    slug, title = "notifications-notification-not-found", "Notification not found"


class RuleNotFound(NotFound):
    slug, title = "notifications-rule-not-found", "Notification rule not found"


class WebhookNotFound(NotFound):
    slug, title = "notifications-webhook-not-found", "Webhook subscription not found"


class DeliveryNotFound(NotFound):
    slug, title = "notifications-delivery-not-found", "Delivery not found"


class InvalidRule(Unprocessable):
    slug, title = "notifications-invalid-rule", "The notification rule is not usable"


class InvalidPreference(Unprocessable):
    slug, title = "notifications-invalid-preference", "The preference is not usable"


class InvalidWebhook(Unprocessable):
    slug, title = "notifications-invalid-webhook", "The webhook subscription is not usable"


class TelegramSecretInvalid(Forbidden):
    slug, title = "notifications-telegram-secret", "Wrong or missing Telegram secret token"


class TelegramOff(Conflict):  # a 409: this deployment is not set up for it, retrying won't help
    slug, title = "notifications-telegram-off", "Telegram is not configured"


class TelegramNotLinked(Conflict):
    slug, title = "notifications-telegram-not-linked", "No Telegram chat is linked"
