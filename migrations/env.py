"""crm2's one Alembic environment, shared by the core and every plugin.

It is never run by the ``alembic`` command directly: ``crm2 migrate`` (see
``crm2_core.migrate``) passes an open connection and the plugin whose branch
runs, and each plugin's revisions are recorded in ``alembic_version_<plugin>``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel.sql.sqltypes import AutoString

from crm2_core.db import UtcDateTime, metadata

config = context.config
plugin: str = config.attributes["crm2_plugin"]
connection = config.attributes.get("connection")


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Let autogenerate see this plugin's tables only."""
    if type_ != "table":
        return True
    if name is None or name.startswith("alembic_version"):
        return False
    if reflected and compare_to is None:
        return name.startswith(f"{plugin}_")
    return obj.info.get("plugin") == plugin


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render crm2's column types so revisions import nothing but sqlalchemy and crm2_core."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "crm2_core.db.types.UtcDateTime()"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def process_revision_directives(ctx: Any, revision: Any, directives: list[Any]) -> None:
    if config.attributes.get("skip_empty") and directives and directives[0].upgrade_ops.is_empty():
        directives[:] = []


if connection is None:
    raise RuntimeError("crm2 migrations run through `crm2 migrate`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=f"alembic_version_{plugin}",
    include_object=include_object,
    process_revision_directives=process_revision_directives,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
)

with context.begin_transaction():
    context.run_migrations()
