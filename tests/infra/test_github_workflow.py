"""The GitHub workflow parses, and runs the README's test command against real services."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import yaml
from infra_helpers import ROOT, vendored_schema

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def workflow() -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True: use the text GitHub sees.
    loaded = yaml.load(WORKFLOW.read_text(), Loader=yaml.BaseLoader)  # all scalars as str
    return dict(loaded)


def readme_test_command() -> str:
    match = re.search(r"^(python3 dev\.py test)\b", (ROOT / "README.md").read_text(), re.M)
    assert match, "README.md gives no `python3 dev.py test` command"
    return match[1]


def test_the_workflow_matches_githubs_schema() -> None:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True)  # PyYAML's YAML 1.1 boolean; GitHub reads the string "on"
    validator = jsonschema.Draft7Validator(vendored_schema("github-workflows.json"))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(data)]

    assert not errors, "\n".join(errors)


def test_the_test_job_runs_the_readme_command_with_the_three_services() -> None:
    job = workflow()["jobs"]["test"]
    runs = [step.get("run", "").strip() for step in job["steps"]]

    assert readme_test_command() in runs
    services = job["services"]
    ports = {name: service["ports"] for name, service in services.items()}
    assert ports == {
        "postgres": ["5432:5432"],
        "redis": ["6379:6379"],
        "rabbitmq": ["5672:5672"],
    }
    for name, service in services.items():
        assert "--health-cmd" in service["options"], f"{name}: wait until it answers"
