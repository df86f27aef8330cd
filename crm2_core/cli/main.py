"""``crm2``: serve, migrate, makemigrations, plugins, users, seed — plus plugins' own commands."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import click

from crm2_core.context import AppContext
from crm2_core.errors import ConfigurationError
from crm2_core.settings import Settings

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def load_context() -> AppContext:
    """Settings, plugins and services from the environment; config errors become one clean line."""
    from crm2_core.bootstrap import build_app_context

    try:
        return build_app_context(Settings())
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(
    help="crm2: a plugin-based CRM. Settings come from CRM2_* variables (see env.example)."
)
@click.version_option(package_name="crm2-core", prog_name="crm2")
def cli() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def build_cli() -> click.Group:
    from crm2_core.cli import commands, events, serve  # noqa: F401  (registers the core commands)
    from crm2_core.plugins import build_plugin_manager

    try:
        registry = build_plugin_manager(Settings())
    except Exception:  # the core commands still work and report the error themselves
        return cli
    for _ in registry.call("crm2_cli", cli=cli):
        pass
    return cli


def main() -> None:
    build_cli()(prog_name="crm2")
