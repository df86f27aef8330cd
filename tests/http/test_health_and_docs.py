"""``/healthz``, ``/readyz``, the offline ``/docs`` and ``/openapi.json``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import HealthCheck, PluginManifest, hookimpl


async def test_healthz_is_200(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    checks = {check["name"]: check["ok"] for check in body["checks"]}
    assert checks == {"database": True}


class Sick:
    manifest = PluginManifest(name="sick", title="Sick")

    @hookimpl
    def crm2_health_checks(self) -> Sequence[HealthCheck]:
        async def upstream() -> None:
            raise ConnectionError("upstream refused")

        async def fine() -> bool:
            return True

        return [HealthCheck("sick_upstream", upstream), HealthCheck("sick_fine", fine)]


async def test_readyz_is_503_when_a_plugin_check_fails(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(extra_plugins=(Sick(),))

    response = await crm2.client.get("/readyz")

    assert response.status_code == 503
    checks = {check["name"]: check for check in response.json()["checks"]}
    assert checks["sick_upstream"]["ok"] is False
    assert "upstream refused" in checks["sick_upstream"]["error"]
    assert checks["sick_fine"]["ok"] is True
    assert checks["database"]["ok"] is True


async def test_docs_page_loads_only_local_assets(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", response.text)
    assert urls, "the page references no assets"
    assert "http://" not in response.text and "https://" not in response.text
    assets = [url for url in urls if url.startswith("/docs/assets/")]
    assert len(assets) >= 2
    for url in assets:
        asset = await crm2.client.get(url)
        assert asset.status_code == 200, url


async def test_openapi_document_lists_the_routes(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/auth/login" in paths
    assert "/api/v1/plugins" in paths
