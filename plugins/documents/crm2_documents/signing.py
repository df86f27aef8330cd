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
import uuid
from typing import Any

from crm2_documents.errors import BadSignature

PURPOSE = b"crm2-documents-signed-url-v1"


def signing_key(context: Any) -> bytes:
    settings = context.plugin_settings("documents")
    if settings.signing_key is not None:
        return bytes(settings.signing_key.get_secret_value().encode())
    jwt_secret = context.plugin_settings("auth").jwt_secret
    if jwt_secret is None:  # auth refuses to start without one outside development
        raise BadSignature("no signing key is configured")
    # derived, so that a signed URL is never a token the auth layer would accept
    return hmac.new(jwt_secret.get_secret_value().encode(), PURPOSE, hashlib.sha256).digest()


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
