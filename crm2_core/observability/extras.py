"""Optional extras: a clear start-up error when a feature is on but its extra is missing."""

from __future__ import annotations

import importlib.util

from crm2_core.errors import ConfigurationError


def require_extra(module: str, extra: str, setting: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigurationError(
            f"{setting}=true needs the {extra} extra: pip install 'crm2-core[{extra}]' "
            f"(or set {setting}=false)"
        )
