"""A bare Django view for benchmarks only (bench/cart_bench.py): the same server, middleware and
gunicorn as the API, but no Ninja, no auth, no database. Mounted by core/urls.py only when
settings.BENCH_BASELINE_VIEW is true (env BENCH_BASELINE_VIEW=1); never in a normal deployment."""

from django.http import HttpRequest, JsonResponse


def baseline(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"items": [], "count": 0, "selected_count": 0, "selected_total": "0.00"})
