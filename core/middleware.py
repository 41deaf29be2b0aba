from django.http import HttpRequest, HttpResponse, JsonResponse

API_PREFIX = "/api/"

MESSAGES = {
    400: "The request is malformed.",
    403: "Forbidden.",
    404: "Not found.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
    500: "Something went wrong on our side.",
}


class ApiErrorEnvelopeMiddleware:
    """Gives the envelope to the API errors Django answers before Ninja sees the request:
    unknown paths (404), methods a path does not take (405), Django's own 400/413/500 pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        from core.api_root import code_for_status

        status = response.status_code
        code = code_for_status(status)
        wrapped = JsonResponse(
            {"code": str(code), "message": MESSAGES.get(status, "The request failed."), "details": None},
            status=status,
            json_dumps_params={"ensure_ascii": False},
        )
        for header in ("Allow", "Retry-After"):
            if header in response:
                wrapped[header] = response[header]
        return wrapped
