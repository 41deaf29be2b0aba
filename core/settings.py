"""Settings, read from the environment once, here.

With no DATABASE_URL / REDIS_URL the project runs on its embedded default: Postgres from a PyPI
wheel with its data in `var/postgres` (core/embedded_database.py), an in-process Dramatiq worker,
and the built-in Alipay dev gateway.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core import embedded_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)
# It signs every token and session: a public fallback would let anyone mint tokens. `make run`
# makes one for the embedded default in VAR_DIR (Makefile); only DEBUG gets a fixed one.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (50 or more random characters); `make run` makes one in var/.")
    SECRET_KEY = "debug-only-insecure-key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    # The admin with a throttled login form (core/admin_site.py).
    "core.apps.ShopAdminConfig",
    # Before django.contrib.auth: its createsuperuser (core/management/commands) takes the name.
    "core",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "ninja",
    "django_dramatiq",
    "billing",
    "orders",
    "workers",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestLogMiddleware",
    "core.middleware.ApiErrorEnvelopeMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
ASGI_APPLICATION = "core.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
# No DATABASE_URL: the embedded default's Postgres (core/embedded_database.py), which `make run`
# starts with its data in VAR_DIR/postgres and reaches over a Unix socket there.
EMBEDDED_DATABASE = not DATABASE_URL
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or embedded_database.database_url(VAR_DIR / "postgres"), conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL (postgres://...): the app runs on Postgres only.")
# Django's PostgreSQL backend, with a health check that reads the socket instead of sending SELECT 1
# and a cursor for prepared statements (core/postgresql/base.py).
DATABASES["default"]["ENGINE"] = "core.postgresql"
# No lock wait lasts forever: a duplicate checkout answers 409 after this instead of hanging
# (orders/services/checkout.py), and a stuck row never piles up workers.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c lock_timeout={env_int('DB_LOCK_TIMEOUT_MS', 5000)}"
# psycopg prepares a statement at its first run on a connection, only on core.db.prepared_cursor
# (the hot statements; Django's own cursor binds on the client and never prepares). Django turns
# prepared statements off unless asked, for connection poolers: PgBouncer needs 1.21+ for them.
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 0

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "shop"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Dramatiq through django-dramatiq. Its default broker is RabbitMQ, so the broker is always named
# here: Redis from REDIS_URL, or, in the embedded default, the in-memory StubBroker drained by a
# worker thread inside the web process (workers.embedded, started by `make run`).
DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker" if REDIS_URL else "dramatiq.brokers.stub.StubBroker",
    # Short socket timeouts: with Redis down, placing an order must fail its enqueue fast (and
    # leave the order to the sweeper), not hang the request.
    "OPTIONS": {"url": REDIS_URL, "socket_connect_timeout": 2, "socket_timeout": 10} if REDIS_URL else {},
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.ShutdownNotifications",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        # Closes Django's DB connections around each message, as request handling does.
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "workers.middleware.ExitWhenAWorkerThreadDies",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["actors"]
# Set by `make run` for the embedded default: run a Dramatiq worker and the sweeper in-process.
RUN_EMBEDDED_WORKER = env_bool("RUN_EMBEDDED_WORKER", False)
SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 60)
SWEEP_BATCH_SIZE = env_int("SWEEP_BATCH_SIZE", 200)

AUTH_USER_MODEL = "core.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Finders let WhiteNoise serve Swagger UI and the admin straight from the installed apps,
# so `collectstatic` is an optimisation, not a requirement, even with DEBUG off.
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Checkout rules (DESIGN.md "Pricing", "Expiry").
ORDER_PAYMENT_TIMEOUT_SECONDS = env_int("ORDER_PAYMENT_TIMEOUT_SECONDS", 1800)
POINTS_PER_YUAN = env_int("POINTS_PER_YUAN", 10)
POINTS_EARNED_PER_YUAN = env_int("POINTS_EARNED_PER_YUAN", 1)
# Refunds (DESIGN.md "Order states"): a buyer may ask within this many days of payment; with
# REFUND_AUTO_APPROVE a request is approved at once instead of waiting for staff in the admin.
REFUND_WINDOW_DAYS = env_int("REFUND_WINDOW_DAYS", 7)
REFUND_AUTO_APPROVE = env_bool("REFUND_AUTO_APPROVE", False)
# The sweeper sends again (or asks about) a refund approved or processing for longer than this.
REFUND_RECHECK_SECONDS = env_int("REFUND_RECHECK_SECONDS", 300)

# JWT lifetimes (seconds).
JWT_ACCESS_TTL_SECONDS = env_int("JWT_ACCESS_TTL_SECONDS", 15 * 60)
JWT_REFRESH_TTL_SECONDS = env_int("JWT_REFRESH_TTL_SECONDS", 7 * 24 * 3600)

# Origins of shop pages served from elsewhere (comma-separated, e.g. https://shop.example.com);
# none by default: the pages Django serves itself are same-origin.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key"]
CORS_EXPOSE_HEADERS = ["Idempotent-Replayed", "Retry-After"]

# Requests per minute per client IP (core/throttling.py); 0 turns a limit off. Logins, sign-ups
# and the admin's login form share AUTH_RATE_LIMIT; /auth/refresh and /auth/logout have their own.
AUTH_RATE_LIMIT = env_int("AUTH_RATE_LIMIT", 20)
AUTH_REFRESH_RATE_LIMIT = env_int("AUTH_REFRESH_RATE_LIMIT", 120)
# The client IP is REMOTE_ADDR unless you sit behind that many trusted proxies (X-Forwarded-For,
# core/client_ip.py). Behind a proxy it must be set, or every client shares the proxy's buckets;
# trusting the header without one would let anyone dodge the limits by sending their own.
NUM_PROXIES = env_int("NUM_PROXIES", 0)
NINJA_NUM_PROXIES = NUM_PROXIES
# Request bodies above this answer 413 before anything reads them.
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "message": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "requests": {"class": "logging.StreamHandler", "formatter": "message"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One JSON line per request from RequestLogMiddleware replaces Django's own request warnings.
        "django.request": {"level": "ERROR"},
        "shop.requests": {"handlers": ["requests"], "level": "INFO", "propagate": False},
    },
}

# Alipay (DESIGN.md "Alipay rules that bite"). With ALIPAY_DEV_GATEWAY=1 the built-in dev gateway
# (billing.dev_gateway, mounted at /dev/alipay/) stands in for Alipay, with key pairs it generates
# on first use under VAR_DIR/alipay-dev/ (outside git).
ALIPAY_GATEWAY_URL = os.environ.get("ALIPAY_GATEWAY_URL", "")
# The dev gateway marks any order paid for whoever presses its Pay button: it is served only when
# asked for by name (`make run` does), and a deploy that names no gateway does not start.
ALIPAY_DEV_GATEWAY = env_bool("ALIPAY_DEV_GATEWAY", False)
if ALIPAY_DEV_GATEWAY == bool(ALIPAY_GATEWAY_URL):
    raise ImproperlyConfigured(
        "Set exactly one of ALIPAY_GATEWAY_URL (e.g. https://openapi.alipay.com/gateway.do) and "
        "ALIPAY_DEV_GATEWAY=1 (the built-in stand-in, for development only)."
    )
ALIPAY_DEV_KEY_DIR = VAR_DIR / "alipay-dev"
ALIPAY_APP_ID = os.environ.get("ALIPAY_APP_ID", "2021000000000000" if ALIPAY_DEV_GATEWAY else "")
ALIPAY_APP_PRIVATE_KEY_PATH = os.environ.get("ALIPAY_APP_PRIVATE_KEY_PATH", "")
ALIPAY_PUBLIC_KEY_PATH = os.environ.get("ALIPAY_PUBLIC_KEY_PATH", "")
# Public-key certificate mode (公钥证书模式), instead of ALIPAY_PUBLIC_KEY_PATH: the app public-key
# certificate (appCertPublicKey_<app id>.crt), the Alipay public-key certificate
# (alipayCertPublicKey_RSA2.crt) and Alipay's root certificate (alipayRootCert.crt), all three.
ALIPAY_APP_CERT_PATH = os.environ.get("ALIPAY_APP_CERT_PATH", "")
ALIPAY_PUBLIC_CERT_PATH = os.environ.get("ALIPAY_PUBLIC_CERT_PATH", "")
ALIPAY_ROOT_CERT_PATH = os.environ.get("ALIPAY_ROOT_CERT_PATH", "")
_alipay_cert_paths = {
    name: globals()[name] for name in ("ALIPAY_APP_CERT_PATH", "ALIPAY_PUBLIC_CERT_PATH", "ALIPAY_ROOT_CERT_PATH")
}
ALIPAY_CERT_MODE = all(_alipay_cert_paths.values())
if any(_alipay_cert_paths.values()) and not ALIPAY_CERT_MODE:
    raise ImproperlyConfigured(
        "Alipay certificate mode needs all three certificate files: set "
        f"{', '.join(name for name, path in _alipay_cert_paths.items() if not path)} too."
    )
if ALIPAY_CERT_MODE and ALIPAY_PUBLIC_KEY_PATH:
    raise ImproperlyConfigured(
        "Set ALIPAY_PUBLIC_KEY_PATH (public-key mode) or the three ALIPAY_*_CERT_PATH files (certificate mode), "
        "not both: the app signs in one mode only."
    )
if ALIPAY_CERT_MODE and ALIPAY_DEV_GATEWAY:
    raise ImproperlyConfigured(
        "ALIPAY_DEV_GATEWAY=1 uses certificates of its own: unset the ALIPAY_*_CERT_PATH files, "
        "and set ALIPAY_DEV_GATEWAY_CERT_MODE=1 for certificate mode."
    )
# The dev gateway in certificate mode: it issues its own CA and certificates under VAR_DIR/alipay-dev/.
ALIPAY_DEV_GATEWAY_CERT_MODE = env_bool("ALIPAY_DEV_GATEWAY_CERT_MODE", False)
if ALIPAY_DEV_GATEWAY_CERT_MODE and not ALIPAY_DEV_GATEWAY:
    raise ImproperlyConfigured("ALIPAY_DEV_GATEWAY_CERT_MODE=1 needs ALIPAY_DEV_GATEWAY=1.")
ALIPAY_SELLER_ID = os.environ.get("ALIPAY_SELLER_ID", "")
# Where Alipay reaches us; in the embedded default that is this server itself.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Where the Alipay return sends the browser: the shop pages, served by this server by default.
FRONTEND_URL = os.environ.get("FRONTEND_URL", PUBLIC_BASE_URL).rstrip("/")
ALIPAY_NOTIFY_URL = os.environ.get("ALIPAY_NOTIFY_URL", PUBLIC_BASE_URL + "/api/v1/payments/alipay/notify")
ALIPAY_RETURN_URL = os.environ.get("ALIPAY_RETURN_URL", PUBLIC_BASE_URL + "/api/v1/payments/alipay/return")
ALIPAY_TIMEOUT_SECONDS = float(os.environ.get("ALIPAY_TIMEOUT_SECONDS", "10"))
# Where the built-in dev gateway is served: this server by default. Its cashier's Pay button
# calls the app back (the notify) and the app calls it (query, close), so a server whose every
# worker waits on such a call to itself stalls until ALIPAY_TIMEOUT_SECONDS; under concurrent
# load (bench/fault_drill.py) serve it from a second process of the app instead, as Alipay is.
DEV_GATEWAY_BASE_URL = os.environ.get("DEV_GATEWAY_BASE_URL", PUBLIC_BASE_URL).rstrip("/")

# WeChat Pay API v3 (DESIGN.md "WeChat Pay v3 rules that bite"), public-key mode. Optional: with
# neither WECHATPAY_MCHID nor WECHATPAY_DEV_GATEWAY=1 the shop offers Alipay only. With
# WECHATPAY_DEV_GATEWAY=1 the built-in dev gateway (billing.wechatpay_dev_gateway, mounted at
# /dev/wechatpay/) stands in for WeChat Pay, with keys it generates on first use under
# VAR_DIR/wechatpay-dev/ (outside git).
WECHATPAY_DEV_GATEWAY = env_bool("WECHATPAY_DEV_GATEWAY", False)
WECHATPAY_DEV_KEY_DIR = VAR_DIR / "wechatpay-dev"
if WECHATPAY_DEV_GATEWAY and os.environ.get("WECHATPAY_MCHID"):
    raise ImproperlyConfigured(
        "Set at most one of WECHATPAY_MCHID (a real merchant) and WECHATPAY_DEV_GATEWAY=1 (the built-in "
        "stand-in, for development only)."
    )
WECHATPAY_ENABLED = WECHATPAY_DEV_GATEWAY or bool(os.environ.get("WECHATPAY_MCHID"))
# The dev gateway's merchant and app: WeChat Pay's documentation examples, which name no real one.
WECHATPAY_MCHID = os.environ.get("WECHATPAY_MCHID", "1900000109" if WECHATPAY_DEV_GATEWAY else "")
WECHATPAY_APPID = os.environ.get("WECHATPAY_APPID", "wxd678efh567hg6787" if WECHATPAY_DEV_GATEWAY else "")
# The merchant API key (apiclient_key.pem) and its certificate's serial number, which sign requests.
WECHATPAY_PRIVATE_KEY_PATH = os.environ.get("WECHATPAY_PRIVATE_KEY_PATH", "")
WECHATPAY_CERT_SERIAL = os.environ.get("WECHATPAY_CERT_SERIAL", "")
# Decrypts notifies: 32 characters, set in the merchant platform.
WECHATPAY_APIV3_KEY = os.environ.get("WECHATPAY_APIV3_KEY", "")
# WeChat Pay's public key (pub_key.pem) and its id (PUB_KEY_ID_...), which verify answers and notifies.
WECHATPAY_PUBLIC_KEY_PATH = os.environ.get("WECHATPAY_PUBLIC_KEY_PATH", "")
WECHATPAY_PUBLIC_KEY_ID = os.environ.get("WECHATPAY_PUBLIC_KEY_ID", "")
WECHATPAY_NOTIFY_URL = os.environ.get("WECHATPAY_NOTIFY_URL", PUBLIC_BASE_URL + "/api/v1/payments/wechat/notify")
WECHATPAY_API_BASE = os.environ.get("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com").rstrip("/")
WECHATPAY_TIMEOUT_SECONDS = float(os.environ.get("WECHATPAY_TIMEOUT_SECONDS", "10"))
if WECHATPAY_ENABLED and not WECHATPAY_DEV_GATEWAY:
    _wechatpay_missing = [
        name
        for name in (
            "WECHATPAY_APPID",
            "WECHATPAY_PRIVATE_KEY_PATH",
            "WECHATPAY_CERT_SERIAL",
            "WECHATPAY_APIV3_KEY",
            "WECHATPAY_PUBLIC_KEY_PATH",
            "WECHATPAY_PUBLIC_KEY_ID",
        )
        if not globals()[name]
    ]
    if _wechatpay_missing:
        raise ImproperlyConfigured(f"WECHATPAY_MCHID is set, so set {', '.join(_wechatpay_missing)} too.")
    if len(WECHATPAY_APIV3_KEY.encode("utf-8")) != 32:
        raise ImproperlyConfigured("WECHATPAY_APIV3_KEY must be the 32-character APIv3 key of the merchant platform.")

# --- HTTPS and security headers ----------------------------------------------------------------------
# SecurityMiddleware always sends X-Content-Type-Options: nosniff and Referrer-Policy (stated here so
# `check --deploy` and a reader see them); core/spa.py adds a Content-Security-Policy to the shop
# pages. When PUBLIC_BASE_URL is https, cookies are Secure, plain HTTP is redirected and HSTS is sent.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SERVED_OVER_HTTPS = PUBLIC_BASE_URL.startswith("https://")
# Behind a proxy that terminates TLS, Django sees plain HTTP: name the header in which the proxy
# says "https" (e.g. X-Forwarded-Proto; the proxy must set it on every request, never pass a
# client's through), or the HTTPS redirect below would loop. Unset, no header is trusted.
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + os.environ["SECURE_PROXY_SSL_HEADER"].upper().replace("-", "_"), "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SERVED_OVER_HTTPS)
# Load balancers ask for the health check over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if SERVED_OVER_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading commits every subdomain of the domain to HTTPS in browsers for months and is slow to
# undo: opt in with SECURE_HSTS_PRELOAD=1 rather than by default (hence the silenced reminder).
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Shop pages (web/, the Vue app; served by core/spa.py) ----------------------------------------
# `make web` builds it into web/dist. WhiteNoise serves the build's files at the site root
# (/assets/<name>-<8 character hash>.<ext> cached for good, as the .br or .gz the build writes
# beside each file when the browser accepts it); core.spa answers index.html for the app's routes.
SPA_DIST_DIR = Path(os.environ.get("SPA_DIST_DIR", BASE_DIR / "web" / "dist"))
if SPA_DIST_DIR.is_dir():
    WHITENOISE_ROOT = SPA_DIST_DIR
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/assets/.+-[A-Za-z0-9_-]{8}\.[A-Za-z0-9]+$"
# --- end of shop pages ------------------------------------------------------------------------------

# bench/cart_bench.py only: mounts a bare Django view at /bench/baseline (core/bench_views.py).
BENCH_BASELINE_VIEW = env_bool("BENCH_BASELINE_VIEW", False)
