"""Every query hello runs: the kit's repository does them all."""

from __future__ import annotations

from crm2_core.api import Repository, Sorts
from crm2_hello.errors import GreetingNotFound
from crm2_hello.models import Greeting

# Oldest first; the id (always last) makes the order total, so the cursor is exact.
SORTS = Sorts({"created_at": Greeting.created_at}, id_column=Greeting.id, default="created_at")
greetings = Repository(Greeting, GreetingNotFound, sorts=SORTS)
