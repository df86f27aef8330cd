"""Security headers on every response; tokens are never cached; 401s do not quote PyJWT."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid

import jwt
import pytest

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_JWT_SECRET, TEST_PASSWORD

BASELINE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def csp_directives(value: str) -> dict[str, list[str]]:
    directives = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/auth/me", 401),
        ("GET", "/nowhere", 404),
        ("POST", "/api/v1/auth/login", 422),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs", 200),
    ],
)
async def test_every_response_carries_the_baseline_headers(
    crm2: Crm2TestApp, method: str, path: str, status: int
) -> None:
    response = await crm2.client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == status
    for name, value in BASELINE.items():
        assert response.headers[name] == value, name
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "server" not in response.headers


async def test_a_refused_body_still_carries_the_headers(crm2: Crm2TestApp) -> None:
    big = b"x" * (crm2.context.settings.max_body_bytes + 1)
    response = await crm2.client.post(
        "/api/v1/auth/login", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_api_answers_forbid_every_source(crm2: Crm2TestApp) -> None:
    csp = csp_directives((await crm2.client.get("/healthz")).headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]


async def test_docs_csp_allows_exactly_the_page_and_its_assets(crm2: Crm2TestApp) -> None:
    """What a browser checks: every script and stylesheet of /docs is allowed, nothing else."""
    response = await crm2.client.get("/docs")
    csp = csp_directives(response.headers["content-security-policy"])
    html = response.text
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert inline, "the Swagger UI page initialises itself inline"
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp["script-src"]
    assert "'unsafe-inline'" not in csp["script-src"]
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert src.startswith("/"), f"{src} is not same-origin"
        assert (await crm2.client.get(src)).status_code == 200, src
    assert csp["connect-src"] == ["'self'"]  # it fetches /openapi.json
    assert csp["frame-ancestors"] == ["'none'"]
    spec = await crm2.client.get("/openapi.json")
    assert spec.status_code == 200


async def test_token_responses_are_not_stored(crm2: Crm2TestApp) -> None:
    await crm2.create_user("agent", email="cache@example.com")
    body = {"email": "cache@example.com", "password": TEST_PASSWORD}
    login = await crm2.client.post("/api/v1/auth/login", json=body)
    assert login.status_code == 200
    assert login.headers["cache-control"] == "no-store"
    refresh = await crm2.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refresh.status_code == 200
    assert refresh.headers["cache-control"] == "no-store"
    admin = await crm2.login("admin")
    key = await crm2.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "k", "role": "viewer", "current_password": TEST_PASSWORD},
        headers=admin,
    )
    assert key.status_code == 201
    assert key.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "someone-else"},
        {"jti": None},
        {"nbf": int(time.time()) + 3600},
    ],
)
async def test_401_details_do_not_quote_the_jwt_library(
    crm2: Crm2TestApp, change: dict[str, object]
) -> None:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "crm2",
        "aud": "crm2-api",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "x",
        "typ": "access",
        "roles": ["admin"],
        "cv": 1,
    }
    claims.update(change)
    claims = {k: v for k, v in claims.items() if v is not None}
    token = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256", headers={"kid": "k1"})
    response = await crm2.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    detail = response.json()["detail"]
    for leak in ("audience", "issuer", "claim", "Signature", "jti", "iat", "nbf"):
        assert leak not in detail, detail
