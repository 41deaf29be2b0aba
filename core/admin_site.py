"""The admin site: Django's, with its login form counted against the same per-IP bucket as
POST /auth/token, so the form is no way around the API's limit on password guesses."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from core import throttling
from core.client_ip import client_ip


class ShopAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if request.method == "POST" and not throttling.take(bucket=throttling.LOGIN, ident=client_ip(request)):
            response = HttpResponse(
                "Too many login attempts from your address; try again in a minute.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(throttling.seconds_left_in_window())
            return response
        return super().login(request, extra_context)
