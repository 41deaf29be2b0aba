"""Test settings: the real Postgres (and Redis where a test asks for it), a fast hasher."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("ALIPAY_DEV_GATEWAY", "1")
os.environ.setdefault("WECHATPAY_DEV_GATEWAY", "1")
# A Redis database of its own, flushed by the tests that use it.
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))

from core.settings import *  # noqa: E402,F403
from core.settings import DRAMATIQ_BROKER  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_RATE_LIMIT = 0
AUTH_REFRESH_RATE_LIMIT = 0
# A namespace per test run: two suites running at once on one machine (a developer and CI, or
# parallel sessions) must not flush or consume each other's messages in the shared Redis DB.
DRAMATIQ_BROKER = {
    **DRAMATIQ_BROKER,
    "OPTIONS": {**DRAMATIQ_BROKER["OPTIONS"], "namespace": f"shop-test-{os.getpid()}"},
}
