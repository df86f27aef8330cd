"""infra/k8s: the kustomize output validates offline against Kubernetes' schemas; Argo CD
syncs the migrate Job before the API; every plugin queue has its worker Deployment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from infra_helpers import INFRA, env_example_settings, kustomize, plugins_with_queues

K8S = INFRA / "k8s"
WAVE = "argocd.argoproj.io/sync-wave"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return kustomize(K8S)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def wave(doc: dict[str, Any]) -> int:
    return int(doc["metadata"].get("annotations", {}).get(WAVE, "0"))


def test_every_manifest_validates_against_the_kubernetes_schemas(rendered) -> None:
    version = kubernetes_validate.latest_version()
    errors = []
    for doc in rendered:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not errors, "\n".join(errors)
    assert {"Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service"} <= {
        d["kind"] for d in rendered
    }


def test_the_validator_refuses_a_broken_manifest(rendered) -> None:
    """The check above can fail: a misspelt field in a Deployment is refused."""
    deployment = json.loads(json.dumps(by_kind(rendered, "Deployment")["crm2-api"]))
    deployment["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_the_migrate_job_syncs_after_settings_and_before_the_processes(rendered) -> None:
    job = by_kind(rendered, "Job")["crm2-migrate"]
    settings = [
        *by_kind(rendered, "ConfigMap").values(),
        *by_kind(rendered, "Secret").values(),
        *by_kind(rendered, "Namespace").values(),
    ]
    processes = list(by_kind(rendered, "Deployment").values())

    assert processes
    assert all(wave(s) < wave(job) for s in settings)
    assert all(wave(job) < wave(p) for p in processes)
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"


def test_the_argo_cd_application_is_valid_and_points_at_the_manifests() -> None:
    application = yaml.safe_load((INFRA / "argocd" / "application.yaml").read_text())
    schema = json.loads((Path(__file__).parent / "argocd-application.schema.json").read_text())

    jsonschema.Draft7Validator(schema).validate(application)
    source = application["spec"]["source"]
    assert (INFRA.parent / source["path"]).resolve() == K8S.resolve()
    assert application["spec"]["destination"]["namespace"] == "crm2"


def test_every_crm2_setting_in_the_configmap_is_a_real_one(rendered) -> None:
    known = env_example_settings()
    data = {**by_kind(rendered, "ConfigMap")["crm2-settings"]["data"]}
    for secret in by_kind(rendered, "Secret").values():
        data.update(secret.get("stringData", {}))
    for deployment in [
        *by_kind(rendered, "Deployment").values(),
        *by_kind(rendered, "Job").values(),
    ]:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            data.update({e["name"]: e.get("value") for e in container.get("env", [])})
    unknown = sorted(k for k in data if k.startswith("CRM2_") and k not in known)
    assert not unknown, f"settings no code reads: {unknown}"


def missing_worker_deployments(
    deployments: dict[str, dict[str, Any]], plugins: list[str]
) -> list[str]:
    """Plugins whose queue has no ``crm2-worker-<plugin>`` Deployment running
    ``crm2 worker --plugin <plugin>``."""
    missing = []
    for plugin in plugins:
        found = deployments.get(f"crm2-worker-{plugin}")
        command = found["spec"]["template"]["spec"]["containers"][0]["command"] if found else []
        if command[:2] != ["crm2", "worker"] or ["--plugin", plugin] not in [
            command[i : i + 2] for i in range(len(command))
        ]:
            missing.append(plugin)
    return missing


def test_every_plugin_queue_has_its_own_worker_deployment(rendered) -> None:
    deployments = by_kind(rendered, "Deployment")

    missing = missing_worker_deployments(deployments, plugins_with_queues())

    assert not missing, (
        "add infra/k8s/workers/<plugin>.yaml (copy infra/k8s/workers/README.md's example) "
        f"and list it in kustomization.yaml for: {missing}"
    )
    assert "crm2-worker" in deployments  # the catch-all worker (every queue, the relay)


def test_a_plugin_with_handlers_but_no_deployment_is_reported(rendered) -> None:
    deployments = by_kind(rendered, "Deployment")
    # a plugin name no manifest here has (payments has its own since it landed)
    assert missing_worker_deployments(deployments, ["billing"]) == ["billing"]

    example = (K8S / "workers" / "README.md").read_text()
    manifest = example.split("```yaml", 1)[1].split("```", 1)[0].replace("PLUGIN", "payments")
    payments = yaml.safe_load(manifest)
    kubernetes_validate.validate(payments, kubernetes_validate.latest_version(), strict=True)
    deployments["crm2-worker-payments"] = payments
    assert missing_worker_deployments(deployments, ["payments"]) == []
