"""What ``GET /api/v1/console/views`` answers."""

from __future__ import annotations

from crm2_core.api import ResponseModel


class ConsolePlugin(ResponseModel):
    """An enabled plugin, as every signed-in user may know of it: not its version, which
    only ``core:plugins`` reads (``GET /api/v1/plugins``)."""

    name: str
    title: str


class ConsoleViewPublic(ResponseModel):
    key: str
    plugin: str
    title: str
    titles: dict[str, str]
    list_path: str
    permission: str
    item_schema: str
    create_schema: str
    columns: list[str]
    filters: list[str]
    form: list[str]
    item_path: str
    id_field: str
    create_path: str
    actions: list[str]
    update_schema: str
    edit: list[str]
    screen: str
    stream: str
    order: int
    # what the forms and actions need; a caller without it gets them empty
    write_permission: str


class ConsoleManifest(ResponseModel):
    plugins: list[ConsolePlugin]
    views: list[ConsoleViewPublic]
