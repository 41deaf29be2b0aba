"""The embedded default as a newcomer meets it: no DATABASE_URL, no REDIS_URL, `make serve` (what
`make run` serves) inside core.embedded_database, driven over real HTTP.

It must be the real thing: Postgres from the wheel, a checkout that takes row locks, and every
seeded course pair x coupon x a spread of points checked out with amounts that add up and no 500."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from decimal import ROUND_HALF_UP, Decimal
from itertools import combinations
from pathlib import Path

import psycopg
import pytest

from core.embedded_database import database_url

ROOT = Path(__file__).resolve().parent.parent
CENT = Decimal("0.01")
POINTS_PER_YUAN = 10
LOCK_TIMEOUT_MS = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base: str, method: str, path: str, body=None, token: str | None = None, key: str | None = None):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode() if body is not None else None, method=method
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if key:
        request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else {}


@pytest.fixture(scope="module")
def embedded():
    # Under var/ (not pytest's 0700 temp folder): as root the server runs as another user, who
    # must be able to reach its data.
    (ROOT / "var").mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="embedded-", dir=ROOT / "var"))
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if name
        not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "ALIPAY_DEV_GATEWAY", "ALIPAY_GATEWAY_URL"}
        and not name.startswith("MAKE")
    }
    env.update(
        VAR_DIR=str(var_dir),
        SECRET_KEY="embedded-default-test-key-" + "x" * 30,
        DB_LOCK_TIMEOUT_MS=str(LOCK_TIMEOUT_MS),
        AUTH_RATE_LIMIT="0",
        SPA_DIST_DIR=str(var_dir / "no-pages"),
    )
    log = open(var_dir / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "core.embedded_database", "--", "make", "--no-print-directory", "serve", f"PORT={port}"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if call(base, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the embedded default did not come up:\n{(var_dir / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, var_dir
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(var_dir, ignore_errors=True)


def login(base: str, username: str) -> str:
    status, tokens = call(base, "POST", "/auth/token", {"username": username, "password": "demo-pass-123"})
    assert status == 200, tokens
    return tokens["access"]


def test_it_is_postgres_from_the_wheel_and_stops_with_the_app(embedded):
    base, var_dir = embedded
    assert call(base, "GET", "/health") == (
        200,
        {"status": "ok", "database": "ok", "database_kind": "embedded_postgres", "broker": "embedded"},
    )
    with psycopg.connect(database_url(var_dir / "postgres")) as connection:
        version, data_directory = connection.execute("SELECT version(), current_setting('data_directory')").fetchone()
    assert version.startswith("PostgreSQL 18."), version
    assert Path(data_directory) == (var_dir / "postgres").resolve()


def test_checkout_takes_row_locks(embedded):
    """A cart row held by another transaction keeps the checkout waiting: past the lock timeout it
    answers 409 checkout_busy and changes nothing; once released the same request goes through."""
    base, var_dir = embedded
    token = login(base, "bob")
    course = call(base, "GET", "/courses")[1]["items"][0]
    assert call(base, "POST", "/cart/items", {"course_id": course["id"]}, token)[0] == 201
    with psycopg.connect(database_url(var_dir / "postgres")) as holder:
        holder.execute(
            "SELECT cart.id FROM orders_cartitem cart JOIN core_user u ON u.id = cart.user_id "
            "WHERE u.username = 'bob' FOR UPDATE"
        ).fetchall()
        started = time.monotonic()
        status, error = call(base, "POST", "/orders", {"points": 0}, token, key="locked-1")
        waited = time.monotonic() - started
        assert (status, error["code"]) == (409, "checkout_busy"), error
        assert waited >= LOCK_TIMEOUT_MS / 1000 * 0.9
    assert call(base, "GET", "/orders", token=token)[1]["count"] == 0
    status, order = call(base, "POST", "/orders", {"points": 0}, token, key="locked-1")
    assert status == 201, order
    assert call(base, "POST", f"/orders/{order['order_no']}/cancel", token=token)[0] == 200


def expected_amounts(prices: list[Decimal], coupon: dict | None, points: int) -> dict[str, Decimal] | str:
    """An oracle written from DESIGN.md "Pricing", independent of orders/pricing.py."""
    subtotal = sum(prices, Decimal("0.00"))
    discount = Decimal("0.00")
    if coupon is not None:
        if subtotal < Decimal(coupon["threshold"]):
            return "coupon_invalid"
        if coupon["kind"] == "fixed":
            discount = min(Decimal(coupon["amount_off"]), subtotal)
        else:
            discount = (subtotal * Decimal(coupon["percent_off"]) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    points_discount = (Decimal(points) / POINTS_PER_YUAN).quantize(CENT)
    if points_discount > subtotal - discount:
        return "points_exceed_limit"
    return {
        "subtotal": subtotal,
        "coupon_discount": discount,
        "points_discount": points_discount,
        "pay_amount": subtotal - discount - points_discount,
    }


def check_out_every_combination(base: str, username: str, pairs, outcomes: list, failures: list) -> None:
    try:
        _check_out_every_combination(base, username, pairs, outcomes, failures)
    except Exception as exc:  # a thread's exception would be lost: the test reports it
        failures.append((username, repr(exc)))


def _check_out_every_combination(base: str, username: str, pairs, outcomes: list, failures: list) -> None:
    token = login(base, username)
    coupons = []
    for coupon in call(base, "GET", "/coupons", token=token)[1]["items"]:
        status, mine = call(base, "POST", f"/coupons/{coupon['id']}/claim", token=token)
        assert status == 201, mine
        coupons.append(mine)
    for first, second in pairs:
        for coupon in [None, *coupons]:
            for cart_course in (first, second):
                status, body = call(base, "POST", "/cart/items", {"course_id": cart_course["id"]}, token)
                assert status == 201, body
            coupon_id = coupon["id"] if coupon else None
            query = f"?user_coupon_id={coupon_id}" if coupon_id else ""
            status, preview = call(base, "GET", f"/checkout/preview{query}", token=token)
            max_points = preview["max_points"] if status == 200 else 0
            for points in sorted({0, 7, 300, max_points // 2, max(max_points - 1, 0), max_points + 1}):
                key = f"{username}-{first['id']}-{second['id']}-{coupon_id}-{points}"
                status, order = call(
                    base, "POST", "/orders", {"user_coupon_id": coupon_id, "points": points}, token, key
                )
                outcomes.append(status)
                expected = expected_amounts([Decimal(first["price"]), Decimal(second["price"])], coupon, points)
                if status >= 500:
                    failures.append((key, status, order))
                    continue
                if isinstance(expected, str):
                    if (status, order.get("code")) != (422, expected):
                        failures.append((key, "expected", expected, status, order))
                    continue
                got = {name: Decimal(order[name]) for name in expected} if status == 201 else order
                if status != 201 or got != expected:
                    failures.append((key, status, got, expected))
                    continue
                status, cancelled = call(base, "POST", f"/orders/{order['order_no']}/cancel", token=token)
                if status != 200:
                    failures.append((key, "cancel", status, cancelled))
                    return
                for cart_course in (first, second):  # the cancelled order's courses go back in the cart
                    call(base, "POST", "/cart/items", {"course_id": cart_course["id"]}, token)
            cart = call(base, "GET", "/cart", token=token)[1]
            for item in cart["items"]:
                call(base, "DELETE", f"/cart/items/{item['id']}", token=token)


def test_every_seeded_pair_coupon_and_points_checks_out(embedded):
    base, _ = embedded
    courses = call(base, "GET", "/courses?page_size=100")[1]["items"]
    pairs = list(combinations(courses, 2))
    assert len(courses) >= 6 and len(pairs) >= 15
    outcomes: list[int] = []
    failures: list = []
    # alice and bob at once: half the pairs each, and two checkouts really run side by side.
    threads = [
        threading.Thread(target=check_out_every_combination, args=(base, name, pairs[i::2], outcomes, failures))
        for i, name in enumerate(["alice", "bob"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures[:10]
    assert outcomes.count(201) >= len(pairs) * 4 * 3, outcomes
    for username in ("alice", "bob"):
        points = call(base, "GET", "/me/points", token=login(base, username))[1]
        assert points["balance"] == 5000, points  # every cancel gave its points back
