from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle


class AuthRateThrottle(SimpleRateThrottle):
    """AUTH_RATE_LIMIT requests per minute per client IP on /auth/*, read on every request so it
    can be changed (or set to 0, off) without a restart of the throttle objects. Counts live in
    the default cache: Redis when REDIS_URL is set, so every web process shares them."""

    scope = "auth"

    def __init__(self) -> None:
        super().__init__(rate="1/m")

    def get_cache_key(self, request: HttpRequest) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request: HttpRequest) -> bool:
        limit = settings.AUTH_RATE_LIMIT
        if limit <= 0:
            return True
        self.num_requests, self.duration = limit, 60
        return super().allow_request(request)
