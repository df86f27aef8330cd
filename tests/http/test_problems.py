"""Every error is RFC 9457 ``application/problem+json`` with a stable ``type``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import PluginManifest, hookimpl

LOGIN = "/api/v1/auth/login"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:crm2:problem:{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_unknown_route_is_404_problem(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/api/v1/nowhere")

    body = assert_problem(response, 404, "not-found")
    assert "/api/v1/nowhere" in body["detail"]


async def test_wrong_method_is_405_problem(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get(LOGIN)

    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


async def test_unknown_input_field_is_422_problem(crm2: Crm2TestApp) -> None:
    response = await crm2.client.post(
        LOGIN, json={"email": "a@example.com", "password": "x", "remember_me": True}
    )

    body = assert_problem(response, 422, "validation-error")
    assert ["body", "remember_me"] in [error["loc"] for error in body["errors"]]


async def test_missing_credentials_is_401_problem(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get("/api/v1/auth/me")

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_missing_permission_is_403_problem(crm2: Crm2TestApp) -> None:
    viewer = await crm2.login("viewer")

    response = await crm2.client.get("/api/v1/auth/users", headers=viewer)

    assert_problem(response, 403, "forbidden")


async def test_declared_body_over_the_limit_is_413_problem(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(max_body_bytes=2048)

    response = await crm2.client.post(
        LOGIN,
        content=b'{"email": "' + b"a" * 4000 + b'"}',
        headers={"content-type": "application/json"},
    )

    assert_problem(response, 413, "payload-too-large")


async def test_streamed_body_over_the_limit_is_413_problem(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(max_body_bytes=2048)
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            sent.append(1)
            yield b"x" * 1000

    request = crm2.client.build_request(
        "POST", LOGIN, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in request.headers

    response = await crm2.client.send(request)

    assert_problem(response, 413, "payload-too-large")
    assert len(sent) < 10  # refused while reading, not after reading it all


async def test_body_of_an_unaccepted_type_is_415_problem(crm2: Crm2TestApp) -> None:
    response = await crm2.client.post(
        LOGIN, content=b"email=a@example.com", headers={"content-type": "text/plain"}
    )

    assert_problem(response, 415, "unsupported-media-type")


async def test_patch_without_if_match_is_428_problem(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    user_id = await crm2.create_user("viewer")

    response = await crm2.client.patch(
        f"/api/v1/auth/users/{user_id}", json={"full_name": "Ada"}, headers=admin
    )

    assert_problem(response, 428, "precondition-required")


async def test_patch_with_stale_if_match_is_412_problem(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    user_id = await crm2.create_user("viewer")
    url = f"/api/v1/auth/users/{user_id}"
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]
    first = await crm2.client.patch(
        url, json={"full_name": "Ada"}, headers={**admin, "If-Match": etag}
    )
    assert first.status_code == 200, first.text

    response = await crm2.client.patch(
        url, json={"full_name": "Grace"}, headers={**admin, "If-Match": etag}
    )

    assert_problem(response, 412, "precondition-failed")


@pytest.mark.parametrize(
    "if_match",
    [b'"v' + b"9" * 5000 + b'"', b'"v\xb2"', b'"v1 "', b'"v-1"', b'"v"'],
    ids=["5000-digits", "superscript-two", "space", "negative", "no-digits"],
)
async def test_if_match_naming_no_version_number_is_412_problem(
    crm2: Crm2TestApp, if_match: bytes
) -> None:
    admin = await crm2.login("admin")

    response = await crm2.client.patch(
        "/api/v1/auth/roles/viewer",
        json={"description": "x"},
        headers={**admin, "If-Match": if_match},  # type: ignore[dict-item]
    )

    assert_problem(response, 412, "precondition-failed")


async def test_an_if_match_list_holding_the_current_etag_passes(crm2: Crm2TestApp) -> None:
    """RFC 9110: If-Match may list several entity tags; any one of them may match."""
    admin = await crm2.login("admin")
    url = "/api/v1/auth/roles/viewer"
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]
    stale = await crm2.client.patch(
        url, json={"description": "x"}, headers={**admin, "If-Match": '"v999", "v998"'}
    )
    assert_problem(stale, 412, "precondition-failed")
    listed = await crm2.client.patch(
        url, json={"description": "x"}, headers={**admin, "If-Match": f'"v999", {etag}'}
    )
    assert listed.status_code == 200, listed.text
    current = listed.headers["etag"]
    broken = await crm2.client.patch(
        url, json={"description": "y"}, headers={**admin, "If-Match": f"{current}, x"}
    )
    assert_problem(broken, 412, "precondition-failed")


async def test_an_if_match_list_with_a_foreign_entity_tag_still_matches_by_the_current_one(
    crm2: Crm2TestApp,
) -> None:
    """RFC 9110: a well-formed entity tag this server never issued just matches nothing."""
    admin = await crm2.login("admin")
    url = "/api/v1/auth/roles/viewer"
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]

    listed = await crm2.client.patch(
        url, json={"description": "x"}, headers={**admin, "If-Match": f'{etag}, "x"'}
    )
    assert listed.status_code == 200, listed.text
    foreign_only = await crm2.client.patch(
        url, json={"description": "y"}, headers={**admin, "If-Match": '"x", "y"'}
    )
    body = assert_problem(foreign_only, 412, "precondition-failed")
    assert "issued" in body["detail"]


async def test_too_many_failed_logins_is_429_problem(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(plugin_settings={"auth": {"login_free_failures": 2}})
    await crm2.create_user("viewer", email="throttled@example.com")
    wrong = {"email": "throttled@example.com", "password": "wrong password"}
    for _ in range(2):
        assert (await crm2.client.post(LOGIN, json=wrong)).status_code == 401

    response = await crm2.client.post(LOGIN, json=wrong)

    assert_problem(response, 429, "too-many-requests")
    assert int(response.headers["retry-after"]) >= 1


class Broken:
    manifest = PluginManifest(name="broken", title="Broken")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/broken")

        @router.get("/boom")
        async def boom() -> None:
            raise RuntimeError("secret-internal-detail in /srv/crm2/boom.py")

        return [router]


async def test_unhandled_error_is_500_problem_without_internals(
    crm2_app_factory: AppFactory,
) -> None:
    crm2 = await crm2_app_factory(extra_plugins=(Broken(),))
    transport = httpx.ASGITransport(app=crm2.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm2.test") as client:
        response = await client.get("/api/v1/broken/boom", headers={"X-Request-ID": "boom-1"})

    body = assert_problem(response, 500, "internal-error")
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert body["request_id"] == "boom-1"
    assert response.headers["x-request-id"] == "boom-1"


async def test_file_upload_has_its_own_larger_limit(crm2_app_factory: AppFactory) -> None:
    """A CSV import is a multipart upload: CRM2_MAX_UPLOAD_BYTES, not the JSON body limit."""
    crm2 = await crm2_app_factory(max_body_bytes=2048, max_upload_bytes=8192)
    upload = {"file": ("big.csv", b"x" * 4000, "text/csv")}

    within = await crm2.client.post(LOGIN, files=upload)
    beyond = await crm2.client.post(LOGIN, files={"file": ("huge.csv", b"x" * 9000, "text/csv")})

    assert within.status_code != 413  # the route refuses it for its own reasons
    assert_problem(beyond, 413, "payload-too-large")


async def test_patch_with_if_match_star_is_428_problem(crm2: Crm2TestApp) -> None:
    """``*`` matches every version: where If-Match is required it would skip the
    lost-update check, so it is refused like a missing header, and nothing changes."""
    admin = await crm2.login("admin")
    user_id = await crm2.create_user("viewer")
    url = f"/api/v1/auth/users/{user_id}"

    for star in ("*", " * "):
        response = await crm2.client.patch(
            url, json={"full_name": "Ada"}, headers={**admin, "If-Match": star}
        )
        assert_problem(response, 428, "precondition-required")
        assert "ETag" in response.json()["detail"]
    assert (await crm2.client.get(url, headers=admin)).json()["full_name"] != "Ada"


async def test_delete_with_if_match_star_keeps_its_rfc_meaning(crm2: Crm2TestApp) -> None:
    """Where If-Match is optional, ``*`` means "if it exists" (RFC 9110)."""
    admin = await crm2.login("admin")
    user_id = await crm2.create_user("viewer")

    response = await crm2.client.delete(
        f"/api/v1/auth/users/{user_id}", headers={**admin, "If-Match": "*"}
    )

    assert response.status_code == 204, response.text
