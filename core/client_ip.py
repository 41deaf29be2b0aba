"""The address of the client a request came from, as the throttles and the payment records see it."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or, behind NUM_PROXIES trusted proxies, the address the outermost of them saw.

    Each proxy appends the address it received the request from to X-Forwarded-For, so with N
    proxies the N-th entry from the right is the client; anything further left was written by the
    client itself and proves nothing. With NUM_PROXIES=0 the header is ignored, or anyone could
    pick a fresh rate-limit bucket per request by sending one. (Ninja's rule, read per request.)
    """
    remote_addr = request.META.get("REMOTE_ADDR", "") or ""
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR")
    num_proxies = settings.NUM_PROXIES
    if num_proxies <= 0 or not forwarded_for:
        return remote_addr
    addresses = forwarded_for.split(",")
    return addresses[-min(num_proxies, len(addresses))].strip()[:64]
