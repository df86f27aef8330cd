"""infra/nginx/nginx.conf lets through every body crm2 itself accepts.

crm2 answers an oversized body with a precise 413 problem; nginx must not refuse
first with its own HTML 413 (its default is 1 MiB).
"""

from __future__ import annotations

import re

from infra_helpers import INFRA, ROOT

NGINX = INFRA / "nginx" / "nginx.conf"
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# The largest bodies crm2 takes: multipart uploads (CSV imports) and a document's file.
LARGEST_BODIES = ("CRM2_MAX_BODY_BYTES", "CRM2_MAX_UPLOAD_BYTES", "CRM2_DOCUMENTS_MAX_UPLOAD_BYTES")


def env_example_value(name: str) -> int:
    match = re.search(rf"^{name}=(\d+)$", (ROOT / "env.example").read_text(), re.M)
    assert match, f"{name} has no number in env.example"
    return int(match[1])


def body_limit(conf: str) -> int:
    match = re.search(r"^\s*client_max_body_size\s+(\d+)([kmg]?)\s*;", conf, re.M | re.I)
    assert match, "nginx.conf sets client_max_body_size"
    return int(match[1]) * UNITS[match[2].lower()]


def test_nginx_takes_every_body_crm2_takes() -> None:
    limit = body_limit(NGINX.read_text())
    for name in LARGEST_BODIES:
        assert limit > env_example_value(name), f"nginx refuses bodies crm2 takes ({name})"


def test_document_uploads_stream_through_nginx() -> None:
    """Unbuffered: the API checks the caller's token and the document when the upload
    starts, and a long upload is not first written to nginx's disk."""
    conf = NGINX.read_text()
    location = re.search(
        r"location ~ \^/api/v1/documents/documents/[^{]*versions\$ \{(.*?)\}", conf, re.S
    )
    assert location, "nginx.conf has a location for document uploads"
    assert re.search(r"proxy_request_buffering\s+off;", location[1])
