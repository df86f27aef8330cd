"""infra/grafana/crm2.json: every metric a panel queries is one crm2 exposes."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from infra_helpers import INFRA

from crm2_core.observability.metrics import Metrics

METRIC = re.compile(r"\bcrm2_[a-z_]+\b")


def exposed_names() -> set[str]:
    context = SimpleNamespace(state={})
    registry = Metrics(context).registry
    names = set()
    for family in registry.collect():
        names.add(family.name)
        kind_suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }.get(family.type, ())
        names.update(family.name + suffix for suffix in kind_suffixes)
    return names


def test_every_panel_queries_metrics_crm2_exposes() -> None:
    dashboard = json.loads((INFRA / "grafana" / "crm2.json").read_text())
    exposed = exposed_names()
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exposed, f"not exposed: {sorted(queried - exposed)}"


def test_every_metric_family_has_a_panel() -> None:
    dashboard = json.dumps(json.loads((INFRA / "grafana" / "crm2.json").read_text()))
    context = SimpleNamespace(state={})
    families = {family.name for family in Metrics(context).registry.collect()}
    missing = [name for name in families if name not in dashboard]
    assert not missing, missing
