"""The HTTP load generator (closed loop: each client sends its next request when the last returns),
its results, and users handed out once each."""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LevelResult:
    clients: int
    ok: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    exhausted: bool = False
    # Requests sent whose answer was not read when the generator stopped (wrk drops them; the
    # server may still have done their work).
    unanswered: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)

    def as_dict(self) -> dict:
        return {
            "clients": self.clients,
            "ok": self.ok,
            "elapsed": self.elapsed,
            "rate": self.rate,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "errors": self.errors,
            "exhausted": self.exhausted,
            "cpu": self.cpu,
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest-rank percentile
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]


# A request: (method, path, body or None, headers); None from the factory = nothing left to send.
Request = tuple[str, str, "bytes | str | None", dict[str, str]]


@dataclass(frozen=True)
class PoolRequest:
    """What every request sends: `body` (JSON, "{uid}" replaced by the user's id; it adds a new
    Idempotency-Key to each request) or none; `ok_status` counts as success."""

    method: str
    path: str
    ok_status: int
    body: str | None = None

    def for_user(self, uid: int, token: str) -> Request:
        """The request for one user, as bench/pool.wrk.lua sends it."""
        headers = {"Authorization": f"Bearer {token}"}
        if self.body is None:
            return self.method, self.path, b"", {**headers, "Content-Length": "0"}
        headers |= {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
        return self.method, self.path, self.body.replace("{uid}", str(uid)), headers

    def from_pool(self, pool: UserPool) -> Callable[[int], Request | None]:
        """drive()'s `next_request`: each request for the pool's next user, None once it is used up."""

        def next_request(_: int) -> Request | None:
            taken = pool.take()
            return None if taken is None else self.for_user(*taken)

        return next_request


# The load generator's clients are processes, not threads: with threads, the client's own GIL
# hand-offs between 8-32 threads added tens of ms to the tail latency it measured (BENCHMARKS.md
# "How figures are taken"). pgbench, the baseline, is C and has no such cost either.
_FORK = multiprocessing.get_context("fork")


def drive(
    *, port: int, clients: int, seconds: float, next_request: Callable[[int], Request | None], ok_status: int = 200
) -> LevelResult:
    """`clients` processes (forked, so `next_request` may be a closure), one keep-alive connection
    each, send `next_request(i)` back to back for `seconds`; answers with `ok_status` count (and
    their latencies), others are tallied by status and error code."""
    result = LevelResult(clients=clients)
    stop = _FORK.Event()
    start_gate = _FORK.Barrier(clients + 1)
    outcomes = _FORK.SimpleQueue()

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat: list[float] = []
        errors: dict[str, int] = {}
        ok = 0
        exhausted = False
        start_gate.wait()
        while not stop.is_set():
            req = next_request(index)
            if req is None:
                exhausted = True
                stop.set()
                break
            method, path, body, headers = req
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                key = f"transport:{type(exc).__name__}"
                errors[key] = errors.get(key, 0) + 1
                continue
            dt = (time.perf_counter() - t0) * 1000.0
            if status == ok_status:
                ok += 1
                lat.append(dt)
            else:
                try:
                    code = json.loads(payload).get("code", "?")
                except (ValueError, AttributeError):
                    code = "?"
                key = f"{status}:{code}"
                errors[key] = errors.get(key, 0) + 1
        conn.close()
        outcomes.put((ok, lat, errors, exhausted))

    def run(index: int) -> None:
        try:
            worker(index)
        finally:
            os._exit(0)  # skip the parent's atexit handlers and threads in the forked child

    procs = [_FORK.Process(target=run, args=(i,), daemon=True) for i in range(clients)]
    for proc in procs:
        proc.start()
    start_gate.wait()
    t0 = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for _ in procs:
        ok, lat, errors, exhausted = outcomes.get()
        result.ok += ok
        result.latencies_ms.extend(lat)
        result.exhausted = result.exhausted or exhausted
        for k, v in errors.items():
            result.errors[k] = result.errors.get(k, 0) + v
    for proc in procs:
        proc.join()
    result.elapsed = time.perf_counter() - t0
    return result


class UserPool:
    """Users handed out once each, in order (for requests that consume something per user)."""

    def __init__(self, tokens: dict[int, str]):
        self.items = sorted(tokens.items())
        self._next = _FORK.Value("q", 0)  # shared with the load generator's forked clients

    def reset(self) -> None:
        with self._next.get_lock():
            self._next.value = 0

    def take(self) -> tuple[int, str] | None:
        with self._next.get_lock():
            if self._next.value >= len(self.items):
                return None
            item = self.items[self._next.value]
            self._next.value += 1
            return item

    @property
    def used(self) -> int:
        return self._next.value

    def mark_used(self, count: int) -> None:
        """For a load generator that takes users itself (wrk): the first `count` are gone."""
        with self._next.get_lock():
            self._next.value = max(self._next.value, count)

    def write(self, path: str) -> None:
        """The pool as "<user id> <token>" lines, in the order take() hands them out."""
        with open(path, "w") as fh:
            fh.writelines(f"{uid} {token}\n" for uid, token in self.items)
