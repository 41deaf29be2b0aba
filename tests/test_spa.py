"""The shop pages served by Django (core/spa.py + WhiteNoise), on a stand-in build in a temp dir."""

import gzip
from pathlib import Path

import pytest
from django.test import Client

INDEX_HTML = (
    '<!doctype html><html><head><script type="module" src="/assets/index-AbCd12_-.js"></script></head>'
    '<body><div id="app"></div></body></html>'
)
# Long enough that gzip makes it smaller: WhiteNoise sends the smallest variant the browser accepts.
ASSET_JS = "console.log('shop');\n" * 40
# WhiteNoise sends the .br file as it is; these bytes only have to be told apart from the others.
BROTLI_STAND_IN = b"brotli bytes"
ASSET_JS_GZ = gzip.compress(ASSET_JS.encode(), mtime=0)


@pytest.fixture
def dist(tmp_path: Path, settings) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX_HTML)
    (tmp_path / "assets" / "index-AbCd12_-.js").write_text(ASSET_JS)
    # The build writes .br and .gz beside each asset (web/vite.config.ts, precompress).
    (tmp_path / "assets" / "index-AbCd12_-.js.gz").write_bytes(ASSET_JS_GZ)
    (tmp_path / "assets" / "index-AbCd12_-.js.br").write_bytes(BROTLI_STAND_IN)
    (tmp_path / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    settings.SPA_DIST_DIR = tmp_path
    # WhiteNoise reads its settings when the middleware is built: on a fresh Client's first request.
    settings.WHITENOISE_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def web() -> Client:
    return Client()


@pytest.mark.parametrize(
    "path",
    ["/", "/orders/123", "/orders/20261125170500123456?payment=paid", "/cart", "/login?next=/checkout", "/apis"],
)
def test_app_routes_get_index_html(dist, web, path):
    response = web.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response.content.decode() == INDEX_HTML
    assert response["Cache-Control"] == "no-cache"


def test_head_is_answered_and_writes_are_not(dist, web):
    assert web.head("/orders/123").status_code == 200
    assert web.post("/orders/123").status_code == 405


def test_unknown_api_path_keeps_the_json_envelope(dist, web):
    response = web.get("/api/v1/unknown")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": "not_found", "message": "Not found.", "details": None}


def test_api_still_answers(dist, web):
    response = web.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"]


def test_built_assets_are_served_and_cached_for_good(dist, web):
    response = web.get("/assets/index-AbCd12_-.js")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode() == ASSET_JS
    assert response["Content-Type"].startswith("text/javascript")
    assert "immutable" in response["Cache-Control"]

    favicon = web.get("/favicon.svg")
    assert favicon.status_code == 200
    assert "immutable" not in favicon["Cache-Control"]


@pytest.mark.parametrize(
    ("accept", "encoding", "body"),
    [
        ("gzip, deflate, br, zstd", "br", BROTLI_STAND_IN),
        ("gzip", "gzip", ASSET_JS_GZ),
        ("", None, ASSET_JS.encode()),
    ],
)
def test_assets_are_served_precompressed_and_cached_for_good(dist, web, accept, encoding, body):
    response = web.get("/assets/index-AbCd12_-.js", HTTP_ACCEPT_ENCODING=accept)
    assert response.status_code == 200
    assert response.get("Content-Encoding") == encoding
    assert b"".join(response.streaming_content) == body
    assert response["Content-Type"].startswith("text/javascript")
    assert "Accept-Encoding" in response["Vary"]
    assert "immutable" in response["Cache-Control"] and "max-age=315360000" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/assets/gone-AbCd1234.js", "/assets/", "/robots.txt", "/orders/123/logo.png"])
def test_missing_files_are_404_not_index_html(dist, web, path):
    response = web.get(path)
    assert response.status_code == 404
    assert b'<div id="app">' not in response.content


def test_reserved_prefixes_are_not_shadowed(dist, web):
    assert web.get("/admin").status_code == 301  # APPEND_SLASH, not the app
    assert web.get("/admin").url == "/admin/"
    admin = web.get("/admin/")
    assert admin.status_code == 302 and "/admin/login/" in admin.url
    assert web.get("/static/nothing-here.css").status_code == 404
    assert web.get("/dev/no-such-page").status_code == 404
    assert web.get("/api/v1/docs").status_code == 200


def test_without_a_build_the_root_says_how_to_build(tmp_path, settings, web):
    settings.SPA_DIST_DIR = tmp_path / "missing"
    response = web.get("/orders/123")
    assert response.status_code == 503
    assert b"make web" in response.content
    assert web.get("/api/v1/unknown").json()["code"] == "not_found"
