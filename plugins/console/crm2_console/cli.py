"""``crm2 console openapi``: the OpenAPI document the console's typed client is generated from."""

from __future__ import annotations

import json
from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.group("console")
    def console() -> None:
        """The web console: what its build needs."""

    @console.command("openapi")
    @click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        help="file to write /openapi.json to",
    )
    def openapi(output: Path) -> None:
        """Write /openapi.json with every installed plugin (CRM2_PLUGINS aside), without serving.

        The console's typed client is generated from it, and the console holds
        screens for every plugin it knows, enabled here or not.
        """
        from crm2_core.errors import ConfigurationError
        from crm2_core.http.app import build_app_context, create_app
        from crm2_core.settings import Settings

        settings = Settings().model_copy(update={"plugins": None})
        try:
            app = create_app(context=build_app_context(settings))
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from None
        output.write_text(json.dumps(app.openapi(), indent=1, sort_keys=True) + "\n")
        click.echo(f"wrote {output}")
