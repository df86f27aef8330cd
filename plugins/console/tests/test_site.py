"""The console's static files: caching by kind, the CSP from the page's own inline scripts,
and nothing outside the build folder."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from crm2_console.site import IMMUTABLE, ConsoleSite, inline_script_hashes
from starlette.datastructures import Headers

PAGE = (
    b"<!doctype html><html><head>"
    b'<script src="/_next/static/chunks/app-1a2b.js" async=""></script>'
    b"</head><body><script>self.__next_f=[1]</script>"
    b'<script id="x">self.__next_f.push("hi")</script></body></html>'
)


def sha(text: bytes) -> str:
    return base64.b64encode(hashlib.sha256(text).digest()).decode()


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    (root / "_next" / "static" / "chunks").mkdir(parents=True)
    (root / "_next" / "static" / "chunks" / "app-1a2b.js").write_text("console.log(1)")
    (root / "deals").mkdir()
    (root / "index.html").write_bytes(PAGE)
    (root / "deals" / "index.html").write_bytes(PAGE.replace(b"hi", b"deals"))
    (root / "404.html").write_bytes(b"<!doctype html><p>not here</p>")
    (root / "favicon.ico").write_bytes(b"\0\0\1\0")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


def get(site: ConsoleSite, path: str, method: str = "GET", **headers: str):  # type: ignore[no-untyped-def]
    return site.respond(method, path, Headers(headers))


def test_hashed_assets_are_immutable_and_pages_revalidate(build: Path) -> None:
    site = ConsoleSite(build)
    asset = get(site, "/_next/static/chunks/app-1a2b.js")
    page = get(site, "/deals/")
    icon = get(site, "/favicon.ico")

    assert asset.status_code == 200
    assert asset.headers["cache-control"] == IMMUTABLE
    assert asset.headers["content-type"].startswith("text/javascript")
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert icon.headers["cache-control"] == "no-cache"


def test_each_page_allows_exactly_its_own_inline_scripts(build: Path) -> None:
    csp = get(ConsoleSite(build), "/").headers["content-security-policy"]

    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    scripts = next(d for d in csp.split("; ") if d.startswith("script-src"))
    first, second = sha(b"self.__next_f=[1]"), sha(b'self.__next_f.push("hi")')
    assert scripts.split()[1:] == ["'self'", f"'sha256-{first}'", f"'sha256-{second}'"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    deals_csp = get(ConsoleSite(build), "/deals/").headers["content-security-policy"]
    assert sha(b'self.__next_f.push("deals")') in deals_csp
    assert sha(b'self.__next_f.push("hi")') not in deals_csp


def test_inline_script_hashes_skip_external_scripts() -> None:
    assert inline_script_hashes(b'<script src="/a.js"></script><script>x()</script>') == (
        sha(b"x()"),
    )


def test_a_page_is_found_with_or_without_the_trailing_slash(build: Path) -> None:
    site = ConsoleSite(build)
    assert get(site, "/deals").body == get(site, "/deals/").body
    assert get(site, "/deals/").status_code == 200


def test_an_unknown_path_is_the_console_404_page(build: Path) -> None:
    response = get(ConsoleSite(build), "/no/such/page/")
    assert response.status_code == 404
    assert response.body == b"<!doctype html><p>not here</p>"


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/deals/../../secret.txt", "/%2e%2e/secret.txt", "/a\\..\\b"]
)
def test_nothing_outside_the_build_folder_is_served(build: Path, path: str) -> None:
    response = get(ConsoleSite(build), path)
    assert response.status_code == 404
    assert b"outside the build" not in response.body


def test_a_matching_etag_is_304_and_head_has_no_body(build: Path) -> None:
    site = ConsoleSite(build)
    etag = get(site, "/").headers["etag"]
    assert get(site, "/", **{"if-none-match": etag}).status_code == 304
    head = get(site, "/", method="HEAD")
    assert head.status_code == 200 and head.body == b""
    assert head.headers["content-length"] == str(len(PAGE))


def test_a_new_build_is_served_at_once(build: Path) -> None:
    site = ConsoleSite(build)
    before = get(site, "/").headers["etag"]
    (build / "index.html").write_bytes(PAGE + b"<!-- new build -->")
    assert get(site, "/").headers["etag"] != before


def test_only_get_and_head(build: Path) -> None:
    response = get(ConsoleSite(build), "/", method="POST")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_without_a_build_it_says_how_to_build(tmp_path: Path) -> None:
    response = get(ConsoleSite(tmp_path / "missing"), "/")
    assert response.status_code == 503
    assert b"python3 dev.py run" in response.body
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    ["/" + "a" * 300, "/" + "a/" * 3000, "/loop", "/loop/index.html", "/deals/" + "x" * 256],
    ids=["name-too-long", "path-too-long", "symlink-loop", "inside-a-symlink-loop", "long-in-dir"],
)
def test_a_path_the_file_system_refuses_is_the_404_page_not_an_error(
    build: Path, path: str
) -> None:
    (build / "loop").symlink_to(build / "loop")
    response = get(ConsoleSite(build), path)
    assert response.status_code == 404
    assert response.body == b"<!doctype html><p>not here</p>"


def test_a_symlink_out_of_the_build_folder_is_not_followed(build: Path) -> None:
    (build / "up").symlink_to(build.parent)
    (build / "secret.txt").symlink_to(build.parent / "secret.txt")
    for path in ("/up/secret.txt", "/secret.txt"):
        response = get(ConsoleSite(build), path)
        assert response.status_code == 404
        assert b"outside the build" not in response.body


def test_a_file_removed_while_being_served_is_the_404_page(
    build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new build replacing the old one between finding a file and reading it."""
    site = ConsoleSite(build)
    monkeypatch.setattr(site, "_resolve", lambda root, path: build / "gone.js")
    response = get(site, "/gone.js")
    assert response.status_code == 404
    assert response.body == b"<!doctype html><p>not here</p>"


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"other", {etag}', '"other",W/{etag}', "*"],
    ids=["exact", "weak", "in-a-list", "weak-in-a-list", "any"],
)
def test_if_none_match_uses_the_weak_comparison_of_rfc_9110(
    build: Path, if_none_match: str
) -> None:
    """A proxy that compresses (nginx's gzip) weakens the ETag to W/"…": still a 304."""
    site = ConsoleSite(build)
    etag = get(site, "/").headers["etag"]
    response = get(site, "/", **{"if-none-match": if_none_match.format(etag=etag)})
    assert response.status_code == 304
    assert response.body == b""
    assert response.headers["etag"] == etag


def test_an_etag_of_another_version_is_a_full_answer(build: Path) -> None:
    response = get(ConsoleSite(build), "/", **{"if-none-match": 'W/"old", "older"'})
    assert response.status_code == 200 and response.body == PAGE


def test_a_build_folder_swapped_by_symlink_is_served_at_once(build: Path) -> None:
    """Deploys that switch ``current -> releases/N`` atomically: the next request sees N."""
    new = build.parent / "next-release"
    new.mkdir()
    (new / "index.html").write_bytes(PAGE + b"<!-- release 2 -->")
    current = build.parent / "current"
    current.symlink_to(build)
    site = ConsoleSite(current)
    assert get(site, "/").body == PAGE

    swap = build.parent / "current.tmp"
    swap.symlink_to(new)
    swap.replace(current)  # rename(2): atomic
    assert get(site, "/").body == PAGE + b"<!-- release 2 -->"
