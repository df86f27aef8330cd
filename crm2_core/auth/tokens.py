"""JWT access tokens: one pinned algorithm, required claims, ``kid`` key rotation."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from crm2_core.auth.config import EXAMPLE_JWT_SECRET, HMAC_ALGORITHMS, AuthSettings
from crm2_core.db import utcnow
from crm2_core.errors import ConfigurationError, Unauthorized

log = logging.getLogger(__name__)

REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "typ", "jti"]
MIN_HMAC_KEY_BYTES = 32
EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def _check_key_type(algorithm: str, key: Any, source: str) -> None:
    """Refuse at start-up a key that cannot sign or verify ``algorithm`` (else: 500 at login)."""
    if algorithm.startswith("RS"):
        ok = isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey)
        wanted = "an RSA key"
    else:
        curve = EC_CURVES[algorithm]
        ok = isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
            isinstance(key.curve, curve)
        )
        wanted = f"an EC key on curve {curve.name}"
    if not ok:
        raise ConfigurationError(
            f"auth: {source} holds a {type(key).__name__.lstrip('_')}, but "
            f"CRM2_AUTH_JWT_ALGORITHM={algorithm} needs {wanted}: fix the key or the algorithm"
        )


def _now() -> float:
    """Seconds since the epoch, as PyJWT checks exp/nbf/iat (a function, so tests can move it)."""
    return time.time()


@dataclass(frozen=True)
class AccessClaims:
    subject: uuid.UUID
    roles: frozenset[str]
    token_id: str
    credentials_version: int
    raw: dict[str, Any]


class TokenService:
    """Issues and verifies access tokens (and other short-lived typed tokens)."""

    def __init__(self, settings: AuthSettings, environment: str) -> None:
        self.settings = settings
        self.algorithm = settings.jwt_algorithm
        self.kid = settings.jwt_key_id
        # A random per-process secret (development without CRM2_AUTH_JWT_SECRET): the
        # serving process says so once at start-up (see ``warn_if_ephemeral``), the CLI not.
        self.ephemeral = False
        self._signing_key, self._verify_keys = self._load_keys(settings, environment)
        # token → (claims, exp, nbf, iat) of access tokens whose signature, issuer,
        # audience and type verified (see ``decode_access``)
        self._verified: dict[str, tuple[AccessClaims, int, int, int]] = {}

    def warn_if_ephemeral(self) -> None:
        if self.ephemeral:
            log.warning(
                "CRM2_AUTH_JWT_SECRET is unset: using a random per-process "
                "secret (development only; tokens end with the process)"
            )

    def _load_keys(self, settings: AuthSettings, environment: str) -> tuple[Any, dict[str, Any]]:
        if settings.jwt_algorithm in HMAC_ALGORITHMS:
            secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
            if environment == "development":
                if not secret:
                    self.ephemeral = True
                    secret = secrets.token_urlsafe(48)
            elif not secret or secret == EXAMPLE_JWT_SECRET:
                raise ConfigurationError(
                    "auth: CRM2_AUTH_JWT_SECRET is unset or still the env.example value; "
                    "outside development set it to 32+ random bytes "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            elif len(secret.encode()) < MIN_HMAC_KEY_BYTES:
                raise ConfigurationError(
                    f"auth: CRM2_AUTH_JWT_SECRET is {len(secret.encode())} bytes; "
                    f"{settings.jwt_algorithm} needs at least {MIN_HMAC_KEY_BYTES}: "
                    "set a longer secret"
                )
            return secret, {settings.jwt_key_id: secret}
        assert settings.jwt_private_key_file is not None
        try:
            private = serialization.load_pem_private_key(
                settings.jwt_private_key_file.read_bytes(), password=None
            )
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"auth: cannot load CRM2_AUTH_JWT_PRIVATE_KEY_FILE ({exc}): point it at a PEM key"
            ) from exc
        _check_key_type(settings.jwt_algorithm, private, "CRM2_AUTH_JWT_PRIVATE_KEY_FILE")
        verify: dict[str, Any] = {}
        if settings.jwt_public_keys_dir is not None:
            for pem in sorted(Path(settings.jwt_public_keys_dir).glob("*.pem")):
                try:
                    public = serialization.load_pem_public_key(pem.read_bytes())
                except (OSError, ValueError) as exc:
                    raise ConfigurationError(
                        f"auth: cannot load public key {pem.name} in "
                        f"CRM2_AUTH_JWT_PUBLIC_KEYS_DIR ({exc}): keep only PEM public keys there"
                    ) from exc
                _check_key_type(settings.jwt_algorithm, public, f"public key {pem.name}")
                verify[pem.stem] = public
        verify[settings.jwt_key_id] = private.public_key()
        return private, verify

    def encode(self, subject: str, token_type: str, ttl_seconds: int, **claims: Any) -> str:
        now = utcnow()
        payload = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=ttl_seconds),
            "jti": uuid.uuid4().hex,
            "typ": token_type,
            **claims,
        }
        return jwt.encode(
            payload, self._signing_key, algorithm=self.algorithm, headers={"kid": self.kid}
        )

    def decode(self, token: str, token_type: str) -> dict[str, Any]:
        """Verify signature, algorithm, issuer, audience, times and type; else 401."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._verify_keys.get(str(header.get("kid")))
            if key is None:
                raise Unauthorized("token signed with an unknown key id")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired; refresh it or sign in again") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("the token is not valid yet") from exc
        except jwt.PyJWTError as exc:
            # Which check failed stays in the server's log: the library's wording helps
            # whoever forges tokens more than whoever holds a real one.
            log.info("refused a %s token: %s", token_type, exc)
            raise Unauthorized("invalid token") from exc
        if claims.get("typ") != token_type:
            raise Unauthorized(
                f"a {claims.get('typ')} token cannot be used as a {token_type} token"
            )
        return claims

    def issue_access(
        self, user_id: uuid.UUID, roles: frozenset[str], credentials_version: int
    ) -> str:
        return self.encode(
            str(user_id),
            "access",
            self.settings.access_ttl_seconds,
            roles=sorted(roles),
            cv=credentials_version,
        )

    VERIFIED_CACHE_ENTRIES = 4096

    def decode_access(self, token: str) -> AccessClaims:
        """The verified claims of an access token; else 401.

        A client sends the same token with every request until it expires, and
        verifying it (base64, JSON, HMAC, claim checks) is most of an authenticated
        read's own cost. The exact token string whose signature and claims verified
        once is kept with its times; a later request with the same string is checked
        only against the clock (exp, nbf, iat, with the same leeway). Anything else,
        or a time check that fails, goes through the full ``decode`` (and its error).
        The keys never change while the process runs, so the signature cannot
        stop verifying; the credentials version is still checked per request.
        """
        hit = self._verified.get(token)
        if hit is not None:
            access, exp, nbf, iat = hit
            now = _now()
            leeway = self.settings.leeway_seconds
            if exp > now - leeway and nbf <= now + leeway and iat <= now + leeway:
                return access
            del self._verified[token]
        access = self._decode_access(token)
        raw = access.raw
        times = [
            int(t)  # as PyJWT compares them
            for t in (raw.get("exp"), raw.get("nbf"), raw.get("iat"))
            if isinstance(t, int | float) and not isinstance(t, bool)
        ]
        if len(times) == 3:
            if len(self._verified) >= self.VERIFIED_CACHE_ENTRIES:
                self._verified.clear()
            exp, nbf, iat = times
            self._verified[token] = (access, exp, nbf, iat)
        return access

    def _decode_access(self, token: str) -> AccessClaims:
        claims = self.decode(token, "access")
        try:
            subject = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("invalid token: sub is not a user id") from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("invalid token: roles claim malformed")
        version = claims.get("cv")
        if not isinstance(version, int) or isinstance(version, bool):
            raise Unauthorized("invalid token: sign in again")
        return AccessClaims(subject, frozenset(roles), str(claims["jti"]), version, claims)
