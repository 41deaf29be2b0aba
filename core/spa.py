"""Serves the shop pages (the Vue app built into web/dist by `make web`).

WhiteNoise serves the build's files (`/assets/...`, `/favicon.svg`) from `WHITENOISE_ROOT` before
any URL is resolved; every other path outside `api/`, `admin/`, `static/` and `dev/` reaches
`index` here and gets index.html, so the app's history-mode routes (`/orders/<no>`, the
Alipay return's landing page) work on a reload or a deep link.
"""

import re
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import re_path
from django.views.decorators.http import require_safe

# The paths the app must never shadow: Django answers them (an unknown /api/... path keeps the
# API's JSON 404). `admin` without its slash stays Django's too, so APPEND_SLASH redirects it.
RESERVED_PREFIXES = ("api", "admin", "static", "dev")
_CATCH_ALL = rf"^(?!(?:{'|'.join(RESERVED_PREFIXES)})(?:/|$)).*$"
# A path that names a file (last segment with an extension) or lies under assets/ is a missing
# file, not an app route: answer 404 rather than HTML where the browser expects a script.
_FILE_LIKE = re.compile(r"(^|/)assets/|\.[A-Za-z0-9]{1,8}$")

# The app's own scripts and styles only: Vite emits no inline script, and Element Plus and Vue set
# styles through the CSSOM (element.style), which `style-src` does not govern (the whole browser
# test runs without a single violation). Pictures may come from any https origin (a course's
# picture_url); the API is this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Course shop</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1>The shop pages are not built</h1>
<p>This server answers the API (<a href="/api/v1/docs">/api/v1/docs</a>) and the admin
(<a href="/admin/">/admin/</a>), but the web app in <code>web/</code> has not been built.</p>
<p>Install Node.js 20.19 or newer (with npm), then run <code>make web</code> (or just
<code>make run</code> again) and reload this page.</p>
</body></html>
"""


def dist_dir() -> Path:
    return Path(settings.SPA_DIST_DIR)


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    if _FILE_LIKE.search(request.path):
        return HttpResponseNotFound("Not found.", content_type="text/plain; charset=utf-8")
    index_file = dist_dir() / "index.html"
    try:
        html = index_file.read_bytes()
    except FileNotFoundError:
        response = HttpResponse(NOT_BUILT, status=503, content_type="text/html; charset=utf-8")
    else:
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # index.html names the current hashed assets: always ask again.
    response["Cache-Control"] = "no-cache"
    return response


def urlpattern():
    """The catch-all route; list it last in core.urls."""
    return re_path(_CATCH_ALL, index, name="spa")
