"""The notifications sections of the web console (``crm2_console_views``); rendered by the console.

The feed has its own screen (``notifications.feed``): the console puts a bell with the live
unread count in its header whenever this view is there.
"""

from __future__ import annotations

from crm2_hookspecs import ConsoleView

VIEWS = (
    ConsoleView(
        key="notifications.feed",
        title="Notifications",
        titles={"ru": "Уведомления"},
        list_path="/api/v1/notifications/feed",
        item_path="/api/v1/notifications/feed/{id}",
        permission="notifications:read",
        item_schema="NotificationPublic",
        columns=("created_at", "title", "body", "read_at"),
        filters=("unread_only",),
        screen="notifications.feed",
        stream="notifications",
        order=5,
    ),
    ConsoleView(
        key="notifications.rules",
        title="Notification rules",
        titles={"ru": "Правила уведомлений"},
        list_path="/api/v1/notifications/rules",
        item_path="/api/v1/notifications/rules/{id}",
        permission="notifications:admin",
        item_schema="NotificationRulePublic",
        columns=("name", "event_type", "channels", "enabled", "active", "plugin"),
        order=930,
    ),
    ConsoleView(
        key="notifications.webhooks",
        title="Webhooks",
        titles={"ru": "Вебхуки"},
        list_path="/api/v1/notifications/webhooks",
        item_path="/api/v1/notifications/webhooks/{id}",
        permission="notifications:admin",
        item_schema="WebhookPublic",
        create_schema="WebhookCreate",
        update_schema="WebhookUpdate",
        columns=("name", "url", "event_types", "active", "created_at"),
        form=("name", "url", "event_types"),
        edit=("name", "url", "event_types", "active"),
        order=935,
    ),
    ConsoleView(
        key="notifications.deliveries",
        title="Deliveries",
        titles={"ru": "Доставки"},
        list_path="/api/v1/notifications/deliveries",
        permission="notifications:admin",
        item_schema="DeliveryPublic",
        columns=("created_at", "channel", "event_type", "status", "attempts", "last_error"),
        filters=("status", "channel"),
        order=940,
    ),
)
