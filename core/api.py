from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from core import selectors, services, sessions
from core.auth import jwt_auth
from core.health import check_health
from core.models import Course, User
from core.schemas import (
    CatalogCourseOut,
    CredentialsIn,
    ErrorOut,
    HealthOut,
    Pagination,
    RefreshIn,
    TokenPairOut,
    UserOut,
)
from core.throttling import LOGIN, REFRESH, BucketThrottle

# Throttled per client IP: password guesses and sign-ups share one bucket (with the admin's
# login form); refreshes have a larger one of their own.
auth_router = Router(tags=["auth"], throttle=BucketThrottle(LOGIN))
refresh_throttle = BucketThrottle(REFRESH)
courses_router = Router(tags=["courses"])
health_router = Router(tags=["health"])
me_router = Router(tags=["me"], auth=jwt_auth)


@auth_router.post("/register", response={201: UserOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}, auth=None)
def register(request: HttpRequest, payload: CredentialsIn):
    return Status(201, services.register_user(username=payload.username, password=payload.password))


@auth_router.post("/token", response={200: TokenPairOut, 401: ErrorOut, 429: ErrorOut}, auth=None)
def token(request: HttpRequest, payload: CredentialsIn):
    return sessions.log_in(username=payload.username, password=payload.password)


@auth_router.post(
    "/refresh", response={200: TokenPairOut, 401: ErrorOut, 429: ErrorOut}, auth=None, throttle=refresh_throttle
)
def refresh(request: HttpRequest, payload: RefreshIn):
    return sessions.rotate_session(refresh=payload.refresh)


@auth_router.post(
    "/logout", response={204: None, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut}, auth=None, throttle=refresh_throttle
)
def logout(request: HttpRequest, payload: RefreshIn):
    """Ends the session the refresh token belongs to (its token family); other sessions stay."""
    sessions.end_session(refresh=payload.refresh)
    return Status(204, None)


@me_router.get("", response=UserOut)
def me(request: HttpRequest):
    return request.auth


def anonymous(request: HttpRequest) -> AnonymousUser:
    return AnonymousUser()


def viewer(request: HttpRequest) -> User | None:
    return request.auth if request.auth.is_authenticated else None


# The catalogue is public; with a bearer token it also says which courses the caller owns. A bad
# token is still refused (401) rather than taken for no token: the shop then refreshes it.
OPTIONAL_TOKEN = {"auth": [jwt_auth, anonymous], "openapi_extra": {"security": [{}]}}


@courses_router.get("", response=list[CatalogCourseOut], **OPTIONAL_TOKEN)
@paginate(Pagination)
def list_courses(request: HttpRequest):
    return selectors.active_courses(viewer=viewer(request))


@courses_router.get("/{course_id}", response={200: CatalogCourseOut, 404: ErrorOut}, **OPTIONAL_TOKEN)
def get_course(request: HttpRequest, course_id: int) -> Course:
    return selectors.get_active_course(course_id=course_id, viewer=viewer(request))


@health_router.get("", response={200: HealthOut, 503: ErrorOut}, auth=None)
def health(request: HttpRequest):
    return check_health()
