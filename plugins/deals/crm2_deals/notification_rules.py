"""The notification rules deals ships for its own events (notifications' default-rules hook).

Plain data: deals does not import notifications, and where notifications is not
enabled nobody reads this. Admins may change or disable the rules afterwards.
"""

from __future__ import annotations

from typing import Any

CHANNELS = ["inapp", "email", "telegram"]

RULES: list[dict[str, Any]] = [
    {
        "key": "deal-won",
        "name": "Deal won",
        "event_type": "deals.deal.won",
        "template": {
            "title": "Deal won: {{ record.name or 'a deal' }}",
            "body": "Won for {{ data.value }} {{ data.currency }}.",
            "link": "/deals/deals/{{ subject }}",
        },
        "recipients": {"record": {"kind": "deals.deal"}, "record_fields": ["owner_id"]},
        "channels": CHANNELS,
    },
    {
        "key": "policy-renewal-due",
        "name": "Policy renewal due",
        "event_type": "deals.policy.renewal_due",
        "template": {
            "title": "Renewal due: {{ record.name or 'a policy' }}",
            "body": "The policy ends on {{ data.end_date }} ({{ data.days_left }} days left).",
            "link": "/deals/policies/{{ subject }}",
        },
        "recipients": {"record": {"kind": "deals.policy"}, "record_fields": ["owner_id"]},
        "channels": CHANNELS,
    },
]
