"""Every forged, foreign or stale bearer token is a 401 problem on ``GET /api/v1/auth/me``."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from crm2_core.testing import TEST_JWT_SECRET, Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

ME = "/api/v1/auth/me"
ISSUER, AUDIENCE, KID = "crm2", "crm2-api", "k1"


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(user_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    """A complete, valid access-token payload; ``changes`` override, ``None`` removes."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "roles": ["agent"],
        "cv": 1,  # the user's credentials version
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def sign(
    payload: dict[str, Any],
    *,
    key: Any = TEST_JWT_SECRET,
    algorithm: str = "HS256",
    kid: str | None = KID,
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def unsigned(payload: dict[str, Any], alg: str) -> str:
    """``header.payload.`` with an empty signature, as an ``alg: none`` attacker sends it."""
    return f"{_b64({'alg': alg, 'typ': 'JWT', 'kid': KID})}.{_b64(payload)}."


async def me(crm2: Crm2TestApp, token: str) -> Any:
    return await crm2.client.get(ME, headers={"Authorization": f"Bearer {token}"})


def assert_401_problem(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.fixture
async def agent_id(crm2: Crm2TestApp) -> uuid.UUID:
    return await crm2.create_user("agent")


async def test_correctly_crafted_token_is_accepted(crm2: Crm2TestApp, agent_id: uuid.UUID) -> None:
    response = await me(crm2, sign(claims(agent_id)))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(agent_id)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_is_401(crm2: Crm2TestApp, agent_id: uuid.UUID, alg: str) -> None:
    assert_401_problem(await me(crm2, unsigned(claims(agent_id), alg)))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_hs512_with_the_right_secret_is_401(crm2: Crm2TestApp, agent_id: uuid.UUID) -> None:
    assert_401_problem(await me(crm2, sign(claims(agent_id), algorithm="HS512")))


async def test_rs256_with_a_foreign_key_is_401(crm2: Crm2TestApp, agent_id: uuid.UUID) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_401_problem(await me(crm2, sign(claims(agent_id), key=key, algorithm="RS256")))


async def test_another_secret_is_401(crm2: Crm2TestApp, agent_id: uuid.UUID) -> None:
    token = sign(claims(agent_id), key="another-secret-that-is-long-enough-0123456789")
    assert_401_problem(await me(crm2, token))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"aud": "someone-else"}, id="wrong-aud"),
        pytest.param({"aud": ["someone-else"]}, id="wrong-aud-list"),
        pytest.param({"iss": "evil"}, id="wrong-iss"),
        pytest.param({"exp": -120}, id="expired"),
        pytest.param({"nbf": +600}, id="nbf-in-future"),
        pytest.param({"iat": +600}, id="iat-in-future"),
        pytest.param({"typ": "refresh"}, id="typ-refresh"),
        pytest.param({"typ": "password-reset"}, id="typ-other"),
        pytest.param({"sub": "not-a-uuid"}, id="sub-not-a-user-id"),
        pytest.param({"roles": "admin"}, id="roles-not-a-list"),
    ],
)
async def test_wrong_claim_is_401(
    crm2: Crm2TestApp, agent_id: uuid.UUID, changes: dict[str, Any]
) -> None:
    now = int(time.time())
    times = {k: now + v for k, v in changes.items() if k in ("exp", "nbf", "iat")}
    assert_401_problem(await me(crm2, sign(claims(agent_id, **{**changes, **times}))))


@pytest.mark.parametrize("claim", ["typ", "exp", "iat", "nbf", "iss", "aud", "sub", "jti"])
async def test_missing_required_claim_is_401(
    crm2: Crm2TestApp, agent_id: uuid.UUID, claim: str
) -> None:
    assert_401_problem(await me(crm2, sign(claims(agent_id, **{claim: None}))))


async def test_expired_within_leeway_is_still_accepted(
    crm2: Crm2TestApp, agent_id: uuid.UUID
) -> None:
    # The default leeway is 10 s: the "expired" case above is beyond it, this one inside it.
    response = await me(crm2, sign(claims(agent_id, exp=int(time.time()) - 2)))
    assert response.status_code == 200, response.text


async def test_verified_token_is_refused_once_it_expires(
    crm2: Crm2TestApp, agent_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process keeps tokens it verified (``TokenService.decode_access``); a kept one
    # must still stop working when the clock passes its exp (+ leeway), like a new one.
    token = sign(claims(agent_id, exp=int(time.time()) + 30))
    assert (await me(crm2, token)).status_code == 200
    assert (await me(crm2, token)).status_code == 200  # from the kept copy
    later = time.time() + 60
    real_datetime = jwt.api_jwt.datetime

    class Later(real_datetime):  # type: ignore[misc,valid-type]
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real_datetime.fromtimestamp(later, tz)

    monkeypatch.setattr("crm2_core.auth.tokens._now", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    assert_401_problem(await me(crm2, token))


async def test_refresh_token_used_as_bearer_is_401(crm2: Crm2TestApp) -> None:
    await crm2.create_user("agent", email="refresh-bearer@example.com")
    login = await crm2.client.post(
        "/api/v1/auth/login",
        json={"email": "refresh-bearer@example.com", "password": "correct horse battery staple"},
    )
    assert login.status_code == 200, login.text
    assert (await me(crm2, login.json()["access_token"])).status_code == 200
    assert_401_problem(await me(crm2, login.json()["refresh_token"]))


async def test_tampered_payload_with_original_signature_is_401(
    crm2: Crm2TestApp, agent_id: uuid.UUID
) -> None:
    header, _, signature = sign(claims(agent_id)).split(".")
    forged = f"{header}.{_b64(claims(agent_id, roles=['admin']))}.{signature}"
    assert_401_problem(await me(crm2, forged))


async def test_tampered_signature_is_401(crm2: Crm2TestApp, agent_id: uuid.UUID) -> None:
    header, payload, signature = sign(claims(agent_id)).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_401_problem(await me(crm2, f"{header}.{payload}.{flipped}"))


@pytest.mark.parametrize("kid", ["k2", "", None], ids=["unknown", "empty", "absent"])
async def test_unknown_kid_is_401(crm2: Crm2TestApp, agent_id: uuid.UUID, kid: str | None) -> None:
    assert_401_problem(await me(crm2, sign(claims(agent_id), kid=kid)))


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "....", "crm2_not_akey", "x" * 600],
)
async def test_garbage_is_401(crm2: Crm2TestApp, token: str) -> None:
    assert_401_problem(await me(crm2, token))


async def test_no_credentials_is_401(crm2: Crm2TestApp) -> None:
    assert_401_problem(await crm2.client.get(ME))


async def test_non_bearer_scheme_is_401(crm2: Crm2TestApp, agent_id: uuid.UUID) -> None:
    response = await crm2.client.get(
        ME, headers={"Authorization": f"Basic {sign(claims(agent_id))}"}
    )
    assert_401_problem(response)


@pytest.mark.parametrize("name", ["Authorization", "X-API-Key"])
async def test_a_credential_header_sent_twice_is_401(crm2: Crm2TestApp, name: str) -> None:
    """The last one counted: a bad credential followed by a good one passed here, while a
    proxy in front that checks the first one saw the bad one. Neither counts now."""
    admin = await crm2.login("admin")
    good = admin["Authorization"] if name == "Authorization" else "crm2_nope"
    if name == "X-API-Key":
        made = await crm2.client.post(
            "/api/v1/auth/api-keys",
            json={"name": "k", "role": "viewer", "current_password": TEST_PASSWORD},
            headers=admin,
        )
        good = made.json()["key"]
    bad = "Bearer forged" if name == "Authorization" else "crm2_forged"
    alone = await crm2.client.get(ME, headers={name: good})
    assert alone.status_code in (200, 403), alone.text  # a key is no user: 403 on /me
    for pair in ([bad, good], [good, good]):
        response = await crm2.client.get(ME, headers=[(name, value) for value in pair])
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "sent 2 times; send it once" in response.json()["detail"]


@pytest.mark.parametrize("order", ["authorization-first", "api-key-first"])
async def test_authorization_and_an_api_key_together_are_401(crm2: Crm2TestApp, order: str) -> None:
    """Authorization silently won: a proxy checking X-API-Key saw another caller than we did."""
    admin = await crm2.login("admin")
    made = await crm2.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "k", "role": "viewer", "current_password": TEST_PASSWORD},
        headers=admin,
    )
    pair = [("Authorization", admin["Authorization"]), ("X-API-Key", made.json()["key"])]
    if order == "api-key-first":
        pair.reverse()

    response = await crm2.client.get(ME, headers=pair)

    assert_401_problem(response)
    assert "send one credential" in response.json()["detail"]


async def test_bearer_without_a_token_says_so(crm2: Crm2TestApp) -> None:
    response = await crm2.client.get(ME, headers={"Authorization": "Bearer "})
    assert response.status_code == 401
    assert response.json()["detail"] == "Authorization: Bearer carries no token"
