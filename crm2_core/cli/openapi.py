"""``crm2 openapi``: the OpenAPI document without serving (for generated clients, the console)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from crm2_core.cli.main import cli
from crm2_core.errors import ConfigurationError
from crm2_core.settings import load_settings


@cli.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="file to write the document to",
)
@click.option(
    "--all-plugins",
    is_flag=True,
    help="every installed plugin, whatever CRM2_PLUGINS says (the console's typed client)",
)
def openapi(output: Path, all_plugins: bool) -> None:
    """Write /openapi.json of the enabled (or, with --all-plugins, every installed) plugins."""
    from crm2_core.bootstrap import build_app_context
    from crm2_core.http.app import create_app

    try:
        settings = load_settings()
        if all_plugins:
            settings = settings.model_copy(update={"plugins": None})
        app = create_app(context=build_app_context(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    document = json.dumps(app.openapi(), indent=1, sort_keys=True) + "\n"
    try:
        output.write_text(document)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output}")
