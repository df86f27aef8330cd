"""Short-lived signed download URLs: method, document, version, expiry and issuer under an HMAC.

A URL made for one version of one document opens nothing else, only with GET,
and only until it expires; changing any part of it breaks the signature (403).
Only someone who can read the document can have one made, and it opens the file
only while they still can: the issuer (the user who asked, or the API key they
asked with) is signed in, and checked again on every download, so revoking the
key stops the URLs it made.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crm2_core.api import ConfigurationError, ServiceUnavailable
from crm2_documents.errors import BadSignature

log = logging.getLogger(__name__)
PURPOSE = b"crm2-documents-signed-url-v1"
DEVELOPMENT_LABEL = b"crm2-documents-signed-url-development-v1"
NO_KEY = (
    "signed download URLs need a key: set CRM2_DOCUMENTS_SIGNING_KEY (32+ random bytes, "
    "python -c 'import secrets; print(secrets.token_urlsafe(48))'); CRM2_AUTH_JWT_SECRET, "
    "which it is otherwise derived from, is unset (auth signs with "
    "CRM2_AUTH_JWT_PRIVATE_KEY_FILE)"
)


class SigningKeyMissing(ServiceUnavailable):
    """No key to sign or check URLs with: this deployment's fault, not the client's."""

    slug, title = "documents-signing-key-missing", "Signed URLs have no key configured"


class EphemeralSigningKey:
    """The key of a development process that has no configured one; ``None`` where one
    is configured. Derived from auth's private key file where auth signs with one (every
    worker reads the same file: a URL made by one opens on another); random otherwise,
    as auth's own secret is there (its tokens end with the process too)."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key


def _configured(context: Any) -> bytes | None:
    settings = context.plugin_settings("documents")
    if settings.signing_key is not None:
        return bytes(settings.signing_key.get_secret_value().encode())
    jwt_secret = context.plugin_settings("auth").jwt_secret
    if jwt_secret is None or not jwt_secret.get_secret_value():
        return None  # auth signs with a private key, or (development) a random secret
    # derived, so that a signed URL is never a token the auth layer would accept
    return hmac.new(jwt_secret.get_secret_value().encode(), PURPOSE, hashlib.sha256).digest()


def _development_key(context: Any) -> bytes:
    """HKDF of auth's private key file under a label of its own (a URL's key is never the
    key, nor anything that signs a token); random when auth has no such file."""
    key_file = context.plugin_settings("auth").jwt_private_key_file
    try:
        material = Path(key_file).read_bytes() if key_file is not None else b""
    except OSError:
        material = b""  # auth refuses to start on it and says why
    if not material:
        log.warning("documents: %s; using a random per-process key (development only)", NO_KEY)
        return secrets.token_bytes(32)
    log.warning(
        "documents: %s; using a key derived from CRM2_AUTH_JWT_PRIVATE_KEY_FILE (development only)",
        NO_KEY,
    )
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=DEVELOPMENT_LABEL).derive(material)


def configure_signing(context: Any) -> None:
    """At start-up: a key is configured or derivable; in development one is derived (see
    ``EphemeralSigningKey``); anywhere else start-up stops naming the setting (every
    signed URL would be refused)."""
    development = None
    if _configured(context) is None:
        if context.settings.env != "development":
            raise ConfigurationError(f"documents: {NO_KEY}")
        development = _development_key(context)
    context.provide(EphemeralSigningKey, EphemeralSigningKey(development))


def signing_key(context: Any) -> bytes:
    key = _configured(context) or context.get(EphemeralSigningKey).key
    if key is None:  # the settings changed after start-up
        raise SigningKeyMissing(NO_KEY)
    return bytes(key)


def _message(
    method: str,
    document_id: uuid.UUID,
    version_id: uuid.UUID,
    expires: int,
    issuer: uuid.UUID,
    issuer_kind: str,
) -> bytes:
    # a user's issuer is the bare id (URLs made before keys were named still verify); a
    # key's is marked, so a user's URL never passes for a key's or the other way round
    who = str(issuer) if issuer_kind == "user" else f"{issuer_kind}:{issuer}"
    return f"{method.upper()}\n{document_id}\n{version_id}\n{expires}\n{who}".encode()


def sign(
    key: bytes,
    document_id: uuid.UUID,
    version_id: uuid.UUID,
    expires: int,
    issuer: uuid.UUID,
    issuer_kind: str = "user",
) -> str:
    message = _message("GET", document_id, version_id, expires, issuer, issuer_kind)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(
    key: bytes,
    method: str,
    document_id: uuid.UUID,
    version_id: uuid.UUID,
    expires: int,
    issuer: uuid.UUID,
    issuer_kind: str,
    signature: str,
    now: float,
) -> None:
    """Raise ``BadSignature`` (403) unless ``signature`` is right and not expired."""
    message = _message(method, document_id, version_id, expires, issuer, issuer_kind)
    good = hmac.new(key, message, hashlib.sha256)
    if not hmac.compare_digest(good.hexdigest(), signature.lower()):
        raise BadSignature("the signature does not match")
    if expires < now:
        raise BadSignature("the signed URL has expired")
