"""Per-client-IP limits on the endpoints that check passwords or mint tokens.

Fixed one-minute windows counted in the default cache (Redis when REDIS_URL is set, so every web
process shares them): `add` creates the window's counter, `incr` (Redis INCR) bumps it and returns
the new count in one step, so forty requests at once over a limit of twenty let exactly twenty
through. (Ninja's SimpleRateThrottle reads a list, appends and writes it back: concurrent requests
overwrite each other's entries and more get through.)
"""

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from core.client_ip import client_ip

WINDOW_SECONDS = 60
clock = time.time


@dataclass(frozen=True)
class Bucket:
    name: str
    # The setting that holds its limit per window; read on every request, 0 turns it off.
    limit_setting: str

    @property
    def limit(self) -> int:
        return getattr(settings, self.limit_setting)


# Password guesses and sign-ups: /auth/token, /auth/register and the admin's login form.
LOGIN = Bucket("login", "AUTH_RATE_LIMIT")
# Token refreshes and log-outs: a page full of buyers behind one address refreshing must not
# spend the budget that lets them log in.
REFRESH = Bucket("refresh", "AUTH_REFRESH_RATE_LIMIT")


def seconds_left_in_window() -> int:
    return max(1, math.ceil(WINDOW_SECONDS - clock() % WINDOW_SECONDS))


def take(*, bucket: Bucket, ident: str) -> bool:
    """Counts one request of `ident` against `bucket`; False once the window's limit is spent."""
    limit = bucket.limit
    if limit <= 0:
        return True
    window = int(clock() // WINDOW_SECONDS)
    # Hashed: the address part may come from a header, and cache keys should stay short and plain.
    digest = hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:32]
    key = f"throttle:{bucket.name}:{window}:{digest}"
    # The counter outlives its window by a little, so it cannot expire between add and incr.
    cache.add(key, 0, timeout=seconds_left_in_window() + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between the two calls: count this request as the first
        cache.add(key, 1, timeout=seconds_left_in_window() + 5)
        return True
    return count <= limit


class BucketThrottle(BaseThrottle):
    """A Ninja throttle for one bucket. Shared by every thread of a process, so it keeps no
    per-request state: the wait is the rest of the current window."""

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket

    def allow_request(self, request: HttpRequest) -> bool:
        return take(bucket=self.bucket, ident=client_ip(request))

    def wait(self) -> float:
        return seconds_left_in_window()
