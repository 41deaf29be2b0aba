"""Answers of hot reads built from rows the database already vouches for: they skip the response
schema's per-object validation (BENCHMARKS.md "Cart"), and are rendered by Ninja's own JSON
renderer, as a validated answer would be. The route still declares its schema for the OpenAPI
document, and a test validates the body against it."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja.renderers import JSONRenderer

RENDERER = JSONRenderer()


def trusted_json(request: HttpRequest, body: dict[str, Any], *, status: int = 200) -> HttpResponse:
    content = RENDERER.render(request, body, response_status=status)
    return HttpResponse(content, status=status, content_type=f"{RENDERER.media_type}; charset={RENDERER.charset}")
