import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from core.auth import ACCESS, encode_token
from tests.factories import UserFactory


class ApiClient:
    """Django's test client through the real URL stack, speaking JSON, optionally as a user."""

    prefix = "/api/v1"

    def __init__(self, user=None) -> None:
        self.client = Client()
        self.user = user
        self.headers: dict[str, str] = {}
        if user is not None:
            self.headers["Authorization"] = f"Bearer {encode_token(user=user, token_type=ACCESS)}"

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kwargs):
        all_headers = {**self.headers, **(headers or {})}
        data = json.dumps(body) if body is not None and not isinstance(body, (str, bytes)) else body
        call = getattr(self.client, method.lower())
        if data is None and method.upper() in ("POST", "PUT", "PATCH"):
            # No body at all, as fetch() sends it (Django's client would send an empty multipart form).
            return call(self.prefix + path, data=b"", content_type="application/json", headers=all_headers, **kwargs)
        if data is None:
            return call(self.prefix + path, headers=all_headers, **kwargs)
        return call(self.prefix + path, data=data, content_type="application/json", headers=all_headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs):
        return self.request("PATCH", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs):
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert body["message"]
    return body


@pytest.fixture
def anon() -> ApiClient:
    return ApiClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def client_for():
    return ApiClient


@pytest.fixture
def api(user) -> ApiClient:
    return ApiClient(user)


def assert_ledger_consistent() -> None:
    """Every points balance equals the sum of its ledger and none is negative, and every entry's
    balance_after is its account's running balance in the order the entries were written."""
    from django.db.models import Sum

    from billing.models import PointsAccount, PointsEntry

    running: dict[int, int] = {}
    entries = PointsEntry.objects.order_by("account_id", "id").values_list("id", "account_id", "delta", "balance_after")
    for entry_id, account_id, delta, balance_after in entries:
        running[account_id] = running.get(account_id, 0) + delta
        assert balance_after == running[account_id], (entry_id, balance_after, running[account_id])
    for account in PointsAccount.objects.annotate(total=Sum("entries__delta")):
        assert account.balance >= 0, account
        assert account.balance == (account.total or 0), (account.balance, account.total)


def run_together(jobs: list[Callable[[], object]], *, spread: float = 0) -> list[object]:
    """Starts every job at the same instant on its own thread (and DB connection). With `spread`,
    each job then starts up to that many seconds later, at random: when one side of a race is
    much quicker to reach its locks, this lets the other side win some rounds too. (Not a
    synchronisation: the outcome is still decided by the locks, and the test checks both.)"""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            barrier.wait()
            if spread:
                time.sleep(random.uniform(0, spread))
            results[i] = jobs[i]()
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def wait_for(predicate: Callable[[], bool], timeout: float = 15) -> bool:
    """Polls until `predicate()` holds or `timeout` seconds pass; the last answer decides."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def backend_pid() -> int:
    """This thread's Postgres session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def someone_waits_for(pid: int) -> bool:
    """Whether another session is waiting for a lock that session `pid` holds. (pg_locks is read
    live, so this may be asked from inside the holder's own transaction.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted AND %s = ANY(pg_blocking_pids(pid)))", [pid]
        )
        return cursor.fetchone()[0]


def hold_after(
    monkeypatch, owner: object, name: str, *, until: Callable[[int], bool], timeout: float = 10
) -> threading.Event:
    """Forces an interleaving instead of hoping for it. The first call of `owner.name`, in whichever
    thread makes it, runs and then keeps its transaction open, with every lock it holds, until
    `until(pid)` is true of its own session `pid` (typically: another session queued behind those
    locks, or the other side finished); later calls run straight through. The returned event is
    set when the hold begins. A hold nothing releases fails its thread after `timeout` seconds."""
    original = getattr(owner, name)
    held = threading.Event()
    first = threading.Lock()

    def holding(*args, **kwargs):
        result = original(*args, **kwargs)
        if first.acquire(blocking=False):
            pid = backend_pid()
            held.set()
            if not wait_for(lambda: until(pid), timeout=timeout):
                raise AssertionError(f"{name} held its locks for {timeout} s and nothing happened")
        return result

    monkeypatch.setattr(owner, name, holding)
    return held


@pytest.fixture
def session_settings(monkeypatch) -> Callable[..., None]:
    """Postgres settings for the connections the test's threads open from now on, added where
    core/settings.py puts lock_timeout (DB_LOCK_TIMEOUT_MS): `session_settings(lock_timeout=300)`.
    Connections already open (the test's own) keep theirs."""
    options = connection.settings_dict["OPTIONS"]

    def configure(**values: object) -> None:
        added = "".join(f" -c {name}={value}" for name, value in values.items())
        monkeypatch.setitem(options, "options", options.get("options", "") + added)

    return configure
