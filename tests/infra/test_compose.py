"""infra/docker-compose.yml: valid compose, and every setting it names is a real one."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import jsonschema
import pytest
import yaml
from infra_helpers import (
    INFRA,
    env_example_settings,
    must_be_given,
    plugins_with_queues,
    settings_models,
    vendored_schema,
)

COMPOSE = INFRA / "docker-compose.yml"
CRM2_SERVICES = ("migrate", "api", "worker")
# The compose file's own variables (replicas, port, image tag), not crm2 settings.
NOT_CRM2_SETTINGS = {
    "CRM2_API_REPLICAS",
    "CRM2_WORKER_REPLICAS",
    "CRM2_HTTP_PORT",
    "CRM2_IMAGE_TAG",
}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def crm2_environment(service: str) -> dict[str, Any]:
    env = compose()["services"][service]["environment"]
    assert isinstance(env, dict), f"{service}: environment as a mapping"
    return env


def test_compose_file_matches_the_compose_specification() -> None:
    validator = jsonschema.Draft7Validator(vendored_schema("compose-spec.json"))
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))

    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_docker_compose_config_renders_it_where_compose_is_installed() -> None:
    docker = shutil.which("docker")
    probe = (
        subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if docker
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here (the schema test runs)")
    env = {"POSTGRES_PASSWORD": "x", "RABBITMQ_PASSWORD": "x", "CRM2_AUTH_JWT_SECRET": "x" * 40}
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_crm2_setting_compose_names_is_in_env_example() -> None:
    known = env_example_settings()
    unknown = [
        f"{service}: {name}"
        for service in CRM2_SERVICES
        for name in crm2_environment(service)
        if name.startswith("CRM2_") and name not in known
    ]
    assert not unknown, "compose sets settings no code reads:\n" + "\n".join(unknown)
    text = COMPOSE.read_text()
    import re

    referenced = set(re.findall(r"\$\{(CRM2_[A-Z0-9_]+)", text))
    assert referenced - known <= NOT_CRM2_SETTINGS, referenced - known - NOT_CRM2_SETTINGS


def test_every_plugins_required_and_secret_settings_reach_the_crm2_services() -> None:
    missing = []
    for plugin, model in settings_models().items():
        for name in must_be_given(model):
            for service in CRM2_SERVICES:
                if name not in crm2_environment(service):
                    missing.append(f"{service}: {name} ({plugin})")
    assert not missing, "pass these through to the crm2 services:\n" + "\n".join(missing)


def test_the_checker_notices_an_unknown_setting() -> None:
    """The check above is real: a made-up name is not in env.example."""
    assert "CRM2_NO_SUCH_SETTING" not in env_example_settings()
    assert "CRM2_DATABASE_URL" in env_example_settings()


def test_api_and_workers_start_only_after_migrate() -> None:
    services = compose()["services"]
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_every_plugin_queue_has_its_own_worker_service() -> None:
    """As in Kubernetes: `worker-<plugin>` runs `crm2 worker --plugin <plugin>`, so ops
    scale one plugin's handlers (`--scale worker-payments=4`) apart from the others'."""
    services = compose()["services"]
    missing = []
    for plugin in plugins_with_queues():
        command = services.get(f"worker-{plugin}", {}).get("command", [])
        if command[:2] != ["crm2", "worker"] or ["--plugin", plugin] not in [
            command[i : i + 2] for i in range(len(command))
        ]:
            missing.append(plugin)
    assert not missing, f"add a worker-<plugin> service (see worker-tasks) for: {missing}"
    for name, service in services.items():
        if name.startswith("worker-"):
            assert service["environment"]["CRM2_SCHEDULER_ENABLED"] == "false", name
            assert service["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            ), name
