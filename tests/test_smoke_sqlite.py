"""The embedded default (no DATABASE_URL: SQLite with IMMEDIATE transactions) served by gunicorn
as `make run` serves it, driven over real HTTP: register, token, cart, checkout (the ORM path of
orders/services/checkout.py), cancel."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(
    base: str, method: str, path: str, body=None, token: str | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def embedded_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="core.settings", VAR_DIR=str(tmp_path), DEBUG="0")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=120)
    subprocess.run([*manage, "seed_demo"], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "core.wsgi:application", "-b", f"127.0.0.1:{port}", "--threads", "4"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if call(base, "GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the embedded server did not come up")
        yield base, tmp_path
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_register_token_and_cart_on_sqlite(embedded_server):
    base, var_dir = embedded_server
    assert (var_dir / "db.sqlite3").exists()
    assert call(base, "GET", "/health") == (200, {"status": "ok", "database": "ok", "broker": "embedded"})

    status, user = call(base, "POST", "/auth/register", {"username": "newcomer", "password": "a-long-secret-9"})
    assert status == 201 and user["username"] == "newcomer"
    status, tokens = call(base, "POST", "/auth/token", {"username": "newcomer", "password": "a-long-secret-9"})
    assert status == 200
    token = tokens["access"]

    status, courses = call(base, "GET", "/courses")
    assert status == 200 and courses["count"] >= 6
    first, second = courses["items"][0], courses["items"][1]
    assert call(base, "POST", "/cart/items", {"course_id": first["id"]}, token)[0] == 201
    assert call(base, "POST", "/cart/items", {"course_id": second["id"]}, token)[0] == 201
    status, error = call(base, "POST", "/cart/items", {"course_id": first["id"]}, token)
    assert (status, error["code"]) == (409, "already_in_cart")

    status, cart = call(base, "GET", "/cart", token=token)
    assert status == 200 and cart["count"] == 2
    from decimal import Decimal

    assert Decimal(cart["selected_total"]) == Decimal(first["price"]) + Decimal(second["price"])
    status, _ = call(base, "DELETE", f"/cart/items/{cart['items'][0]['id']}", token=token)
    assert status == 204
    assert call(base, "GET", "/cart", token=token)[1]["count"] == 1
    status, demo_tokens = call(base, "POST", "/auth/token", {"username": "alice", "password": "demo-pass-123"})
    assert status == 200 and demo_tokens["token_type"] == "Bearer"


def test_checkout_and_cancel_on_sqlite(embedded_server):
    base, _ = embedded_server
    status, tokens = call(base, "POST", "/auth/token", {"username": "alice", "password": "demo-pass-123"})
    token = tokens["access"]
    status, courses = call(base, "GET", "/courses")
    course = courses["items"][-1]
    assert call(base, "POST", "/cart/items", {"course_id": course["id"]}, token)[0] == 201
    status, preview = call(base, "GET", "/checkout/preview", token=token)
    assert status == 200, preview

    body = {"pay_type": "alipay", "user_coupon_id": None, "points": 10}
    status, order = call(base, "POST", "/orders", body, token, headers={"Idempotency-Key": "sqlite-1"})
    assert status == 201, order
    assert order["status"] == "pending" and order["points_used"] == 10
    assert [line["course_id"] for line in order["lines"]] == [course["id"]]
    from decimal import Decimal

    assert Decimal(order["pay_amount"]) == Decimal(course["price"]) - Decimal("1.00")
    again_status, again = call(base, "POST", "/orders", body, token, headers={"Idempotency-Key": "sqlite-1"})
    assert (again_status, again["order_no"]) == (201, order["order_no"])
    status, error = call(base, "POST", "/orders", body, token, headers={"Idempotency-Key": "sqlite-2"})
    assert (status, error["code"]) == (422, "cart_empty")
    assert call(base, "GET", "/cart", token=token)[1]["count"] == 0

    status, cancelled = call(base, "POST", f"/orders/{order['order_no']}/cancel", token=token)
    assert (status, cancelled["status"]) == (200, "cancelled"), cancelled
