"""Hello's errors: each a ``Crm2Error`` subclass carrying its HTTP status and a stable slug."""

from __future__ import annotations

from crm2_core.api import NotFound


class GreetingNotFound(NotFound):
    slug, title = "hello-greeting-not-found", "Greeting not found"
