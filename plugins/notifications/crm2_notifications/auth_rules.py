"""The rules notifications ships for the core's sign-in events (``auth.login.*``).

The core emits them and knows nothing of notifications; notifications depends on
the core, so it is the one that ships rules for them, through the same hook other
plugins use (stored once as ``notifications:<key>``; admins may change or
disable them). The events carry user ids and the client's address, never an
e-mail, a password or a token, so neither can the notifications.
"""

from __future__ import annotations

from typing import Any

THE_USER = {"data_fields": ["user_id"]}
CHANNELS = ["inapp", "email"]

RULES: list[dict[str, Any]] = [
    {
        "key": "auth-login-delayed",
        "name": "Wrong passwords on your account",
        "event_type": "auth.login.delayed",
        "template": {
            "title": "Several wrong passwords on your account",
            "body": "{{ data.failures }} wrong passwords in a row from {{ data.address }}; "
            "more tries from there now wait. If this was not you, change your password.",
        },
        "recipients": THE_USER,
        "channels": CHANNELS,
    },
    {
        "key": "auth-login-denied",
        "name": "A sign-in was refused by its user",
        "event_type": "auth.login.confirmation_denied",
        "template": {
            "title": "A sign-in with the right password was refused",
            "body": "User {{ data.user_id }} refused a sign-in to their account: someone "
            "else may know its password. Change it, or have an admin reset it.",
        },
        "recipients": {**THE_USER, "roles": ["admin"]},
        "channels": CHANNELS,
    },
]
