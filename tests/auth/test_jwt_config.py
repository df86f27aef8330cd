"""JWT configuration: secrets refused outside development, RS256/ES256 with ``kid`` rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from crm2_core.auth.config import EXAMPLE_JWT_SECRET
from crm2_core.errors import ConfigurationError
from crm2_core.testing import Crm2TestApp

LOGIN, ME = "/api/v1/auth/login", "/api/v1/auth/me"
PASSWORD = "correct horse battery staple"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(algorithm: str) -> PrivateKey:
    if algorithm.startswith("RS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def write_private(key: PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def access_claims(user_id: uuid.UUID) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "crm2",
        "aud": "crm2-api",
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "roles": ["agent"],
        "cv": 1,
    }


async def me(app: Crm2TestApp, token: str) -> Any:
    return await app.client.get(ME, headers={"Authorization": f"Bearer {token}"})


async def login_token(app: Crm2TestApp) -> str:
    email = f"jwt-{uuid.uuid4().hex[:8]}@example.com"
    await app.create_user("agent", email=email)
    response = await app.client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# -- HMAC secrets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [None, "", "x" * 31, EXAMPLE_JWT_SECRET],
    ids=["missing", "empty", "31-bytes", "example-value"],
)
@pytest.mark.parametrize("env", ["test", "production"])
async def test_app_build_refuses_a_bad_secret_outside_development(
    crm2_app_factory: Any, secret: str | None, env: str
) -> None:
    with pytest.raises(ConfigurationError, match="CRM2_AUTH_JWT_SECRET"):
        await crm2_app_factory(env=env, plugin_settings={"auth": {"jwt_secret": secret}})


async def test_secret_of_32_bytes_is_accepted_outside_development(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(
        env="production", plugin_settings={"auth": {"jwt_secret": "y" * 32}}
    )
    assert (await me(app, await login_token(app))).status_code == 200


async def test_secret_length_counts_bytes_not_characters(crm2_app_factory: Any) -> None:
    # 16 characters, 32 bytes in UTF-8: long enough.
    app = await crm2_app_factory(
        env="production", plugin_settings={"auth": {"jwt_secret": "é" * 16}}
    )
    assert (await me(app, await login_token(app))).status_code == 200


async def test_development_without_a_secret_uses_a_random_one(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(env="development", plugin_settings={"auth": {"jwt_secret": None}})
    token = await login_token(app)
    assert (await me(app, token)).status_code == 200
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, EXAMPLE_JWT_SECRET, algorithms=["HS256"], audience="crm2-api")


async def test_development_accepts_the_example_secret(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(
        env="development", plugin_settings={"auth": {"jwt_secret": EXAMPLE_JWT_SECRET}}
    )
    assert (await me(app, await login_token(app))).status_code == 200


async def test_issuer_and_audience_come_from_settings(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(
        plugin_settings={"auth": {"jwt_issuer": "acme", "jwt_audience": "acme-crm"}}
    )
    token = await login_token(app)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("acme", "acme-crm")
    assert (await me(app, token)).status_code == 200


async def test_access_ttl_comes_from_settings(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(plugin_settings={"auth": {"access_ttl_seconds": 120}})
    claims = jwt.decode(await login_token(app), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


# -- asymmetric keys ----------------------------------------------------------------------


@pytest.fixture(params=["RS256", "ES256"])
def algorithm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def asymmetric_app(
    crm2_app_factory: Any, tmp_path: Path, algorithm: str, old_keys: dict[str, PrivateKey]
) -> Crm2TestApp:
    """An app signing with a fresh ``k1`` key; ``old_keys`` public halves are still accepted."""
    public_dir = tmp_path / "public"
    public_dir.mkdir()
    for kid, key in old_keys.items():
        (public_dir / f"{kid}.pem").write_bytes(public_pem(key))
    private_file = write_private(new_key(algorithm), tmp_path / "current.pem")
    app: Crm2TestApp = await crm2_app_factory(
        plugin_settings={
            "auth": {
                "jwt_algorithm": algorithm,
                "jwt_private_key_file": private_file,
                "jwt_public_keys_dir": public_dir,
                "jwt_key_id": "k1",
            }
        }
    )
    return app


async def test_asymmetric_algorithm_signs_and_verifies(
    crm2_app_factory: Any, tmp_path: Path, algorithm: str
) -> None:
    app = await asymmetric_app(crm2_app_factory, tmp_path, algorithm, {})
    token = await login_token(app)
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "kid": "k1", "typ": "JWT"}
    assert (await me(app, token)).status_code == 200


async def test_token_of_a_rotated_out_key_in_public_dir_is_accepted(
    crm2_app_factory: Any, tmp_path: Path, algorithm: str
) -> None:
    old = new_key(algorithm)
    app = await asymmetric_app(crm2_app_factory, tmp_path, algorithm, {"k0": old})
    user_id = await app.create_user("agent")
    token = jwt.encode(access_claims(user_id), old, algorithm=algorithm, headers={"kid": "k0"})
    assert (await me(app, token)).status_code == 200


async def test_token_with_an_unknown_kid_is_rejected(
    crm2_app_factory: Any, tmp_path: Path, algorithm: str
) -> None:
    old = new_key(algorithm)
    app = await asymmetric_app(crm2_app_factory, tmp_path, algorithm, {"k0": old})
    user_id = await app.create_user("agent")
    token = jwt.encode(access_claims(user_id), old, algorithm=algorithm, headers={"kid": "k9"})
    assert (await me(app, token)).status_code == 401


async def test_old_key_cannot_sign_under_the_current_kid(
    crm2_app_factory: Any, tmp_path: Path, algorithm: str
) -> None:
    old = new_key(algorithm)
    app = await asymmetric_app(crm2_app_factory, tmp_path, algorithm, {"k0": old})
    user_id = await app.create_user("agent")
    token = jwt.encode(access_claims(user_id), old, algorithm=algorithm, headers={"kid": "k1"})
    assert (await me(app, token)).status_code == 401


async def test_foreign_key_is_rejected(
    crm2_app_factory: Any, tmp_path: Path, algorithm: str
) -> None:
    app = await asymmetric_app(crm2_app_factory, tmp_path, algorithm, {})
    user_id = await app.create_user("agent")
    foreign = new_key(algorithm)
    token = jwt.encode(access_claims(user_id), foreign, algorithm=algorithm, headers={"kid": "k1"})
    assert (await me(app, token)).status_code == 401


async def test_hs256_signed_with_the_public_key_is_rejected(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """Algorithm confusion: the public key used as an HMAC secret must not verify."""
    old = new_key("RS256")
    app = await asymmetric_app(crm2_app_factory, tmp_path, "RS256", {"k0": old})
    user_id = await app.create_user("agent")

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": "k0", "typ": "JWT"}).encode())
    payload = b64(json.dumps(access_claims(user_id)).encode())
    signature = hmac.new(public_pem(old), f"{header}.{payload}".encode(), hashlib.sha256)
    assert (await me(app, f"{header}.{payload}.{b64(signature.digest())}")).status_code == 401


async def test_hmac_secret_does_not_verify_when_rs256_is_configured(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    from crm2_core.testing import TEST_JWT_SECRET

    app = await asymmetric_app(crm2_app_factory, tmp_path, "RS256", {})
    user_id = await app.create_user("agent")
    token = jwt.encode(access_claims(user_id), TEST_JWT_SECRET, headers={"kid": "k1"})
    assert (await me(app, token)).status_code == 401


async def test_asymmetric_algorithm_without_a_key_file_refuses_to_start(
    crm2_app_factory: Any,
) -> None:
    with pytest.raises(ConfigurationError, match="PRIVATE_KEY_FILE"):
        await crm2_app_factory(plugin_settings={"auth": {"jwt_algorithm": "RS256"}})


async def test_unreadable_key_file_refuses_to_start(crm2_app_factory: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigurationError, match="PRIVATE_KEY_FILE"):
        await crm2_app_factory(
            plugin_settings={"auth": {"jwt_algorithm": "ES256", "jwt_private_key_file": bad}}
        )


async def test_key_of_the_wrong_type_refuses_to_start(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    rsa_file = write_private(new_key("RS256"), tmp_path / "rsa.pem")
    with pytest.raises(ConfigurationError, match="ES256"):
        await crm2_app_factory(
            plugin_settings={"auth": {"jwt_algorithm": "ES256", "jwt_private_key_file": rsa_file}}
        )


async def test_ec_key_on_the_wrong_curve_refuses_to_start(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    p384 = write_private(ec.generate_private_key(ec.SECP384R1()), tmp_path / "p384.pem")
    with pytest.raises(ConfigurationError, match=r"(?i)secp256r1"):
        await crm2_app_factory(
            plugin_settings={"auth": {"jwt_algorithm": "ES256", "jwt_private_key_file": p384}}
        )


async def test_public_key_of_the_wrong_type_refuses_to_start(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    public_dir = tmp_path / "public"
    public_dir.mkdir()
    (public_dir / "k0.pem").write_bytes(public_pem(new_key("ES256")))
    private_file = write_private(new_key("RS256"), tmp_path / "current.pem")
    with pytest.raises(ConfigurationError, match=r"k0\.pem"):
        await crm2_app_factory(
            plugin_settings={
                "auth": {
                    "jwt_algorithm": "RS256",
                    "jwt_private_key_file": private_file,
                    "jwt_public_keys_dir": public_dir,
                }
            }
        )


async def test_unreadable_public_key_refuses_to_start(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    public_dir = tmp_path / "public"
    public_dir.mkdir()
    (public_dir / "k0.pem").write_text("garbage")
    private_file = write_private(new_key("ES256"), tmp_path / "current.pem")
    with pytest.raises(ConfigurationError, match=r"k0\.pem"):
        await crm2_app_factory(
            plugin_settings={
                "auth": {
                    "jwt_algorithm": "ES256",
                    "jwt_private_key_file": private_file,
                    "jwt_public_keys_dir": public_dir,
                }
            }
        )
