"""The ``crm2`` command line."""

from __future__ import annotations

from crm2_core.cli.main import build_cli, main

__all__ = ["build_cli", "main"]
