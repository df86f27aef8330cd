"""Which console sections a principal sees: enabled plugins' views they hold the permission of."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crm2_console.errors import BadConsoleView
from crm2_console.schemas import ConsoleManifest, ConsolePlugin, ConsoleViewPublic
from crm2_core.api import AppContext
from crm2_hookspecs import ConsoleView


@dataclass(frozen=True)
class ConsoleViews:
    """Every enabled plugin's views, collected once at start-up (kept on the context)."""

    views: list[ConsoleViewPublic]


def collect_views(context: AppContext) -> list[ConsoleViewPublic]:
    """Every enabled plugin's ``crm2_console_views``, checked, in display order."""
    views: list[ConsoleViewPublic] = []
    for plugin, view in context.plugins.collect("crm2_console_views", context=context):
        if not isinstance(view, ConsoleView) or not view.key.startswith(f"{plugin}."):
            raise BadConsoleView(
                f"{plugin} returned {view!r} from crm2_console_views: return ConsoleView "
                f"records whose key starts with '{plugin}.'"
            )
        if any(seen.key == view.key for seen in views):
            # the console opens a section by its key: the second could never be opened
            raise BadConsoleView(
                f"{plugin} returned two views keyed {view.key!r} from crm2_console_views: "
                "give each view its own key"
            )
        views.append(
            ConsoleViewPublic.model_validate(
                {
                    **view.__dict__,
                    "plugin": plugin,
                    "titles": dict(view.titles),
                    "columns": list(view.columns),
                    "filters": list(view.filters),
                    "form": list(view.form),
                    "edit": list(view.edit),
                    "actions": list(view.actions),
                    "create_path": view.create_path or view.list_path,
                    "write_permission": view.write_permission or view.permission,
                }
            )
        )
    views.sort(key=lambda v: (v.order, v.key))
    return views


def manifest_for(context: AppContext, allowed: Callable[[str], bool]) -> ConsoleManifest:
    """The enabled plugins and the views whose permission ``allowed`` grants; a view whose
    ``write_permission`` it does not grant comes without its forms and actions (read-only)."""
    views = context.get(ConsoleViews).views
    plugins = [
        ConsolePlugin(name=row.name, title=row.title)
        for row in context.plugins.statuses()
        if row.enabled
    ]
    return ConsoleManifest(
        plugins=plugins,
        views=[
            view if allowed(view.write_permission) else read_only(view)
            for view in views
            if allowed(view.permission)
        ],
    )


def read_only(view: ConsoleViewPublic) -> ConsoleViewPublic:
    """The view for a reader who may not write: no create form, no edit form, no actions
    (each would only end in a 403)."""
    return view.model_copy(update={"form": [], "edit": [], "actions": []})
