"""Notifications errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.api import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
    whole_seconds,
)


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


class TelegramPaused(ServiceUnavailable):
    """Telegram's flood control holds the whole bot: a message now would lengthen the ban."""

    slug, title = "notifications-telegram-paused", "The Telegram bot is paused by flood control"

    def __init__(self, seconds: float) -> None:
        wait = whole_seconds(seconds)
        super().__init__(
            f"Telegram asked the bot to send nothing for {wait} more seconds (flood control), "
            "so the sign-in cannot be sent to Telegram for confirmation now; try again then",
            retry_after=wait,
        )


class TelegramRateLimited(ServiceUnavailable):
    """The bot is at its own bot-wide rate limit (``telegram_rate_per_second``), a step
    before flood control: Telegram holds nothing, a token is there in ``seconds``."""

    slug, title = "notifications-telegram-rate-limited", "The Telegram bot is at its rate limit"

    def __init__(self, seconds: float) -> None:
        wait = whole_seconds(seconds)
        super().__init__(
            f"the Telegram bot has sent as many messages as its rate limit allows; the "
            f"sign-in question can be sent in {wait} seconds: try again then",
            retry_after=wait,
        )


class RateLimiterUnavailable(ServiceUnavailable):
    """The shared rate limiter (Redis) did not answer: nothing is sent without it, since
    sending past a bot's pause or limit is what the service punishes with longer bans."""

    slug, title = "notifications-rate-limiter-unavailable", "The notifications rate limiter is down"

    def __init__(self, seconds: float) -> None:
        wait = whole_seconds(seconds)
        super().__init__(
            f"the rate limiter of the notifications (Redis) is not answering, so nothing that "
            f"it limits can be sent now; try again in {wait} seconds",
            retry_after=wait,
        )
        self.seconds = seconds
