"""The load: client threads, each order a new user following one of the buyers' flows (pay,
switch provider, cancel, pay and cancel at once, paid with points, left to expire; some paid
orders refunded), every request retried as a real client would; and what they saw."""

from __future__ import annotations

import html
import http.client
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from common.load import UserPool
from common.log import log

from .seed import COUPON_OFF, POINTS_PER_YUAN, course_price, user_courses
from .stack import now

# Client retries of one request: pauses between attempts (s). ~10 s in all, longer than a restart.
BACKOFF = [0.2, 0.4, 0.8, 1.5, 2.0, 2.5, 3.0]
RETRY_409 = {"idempotency_key_in_use", "checkout_busy"}
# What a refund request sent again gets when the first one (whose answer was lost) made the refund.
REFUND_RETRY_409 = {"order_line_already_refunded", "order_not_refundable"}


@dataclass
class Req:
    t0: float
    t1: float
    kind: str
    status: int | None
    error: str | None  # transport error class name, or "timeout"


@dataclass
class Seen:
    """An order as a client saw it in its 201."""

    order_no: str
    uid: int
    key: str
    flow: str
    status: str
    pay_amount: str
    points_used: int
    user_coupon_id: int | None
    attempts: int
    replayed: bool
    t: float
    line_ids: list[int] = field(default_factory=list)
    provider: str = ""  # the provider (and channel) the buyer paid or tried to pay with
    pay_clicked: bool = False  # a Pay button answered: the gateway took the money
    cancel_answer: str = ""  # "ok", or the error code the cancel got


@dataclass
class RefundSeen:
    """A refund as a client saw it: in its 201, or found on the order after a retried request
    was refused because the first (whose answer the client never got) had made it."""

    order_no: str
    refund_id: int
    line_ids: list[int]
    amount: str
    how: str  # "201", "201 after a retry", "201 replayed after a retry"


@dataclass
class Recorder:
    lock: threading.Lock = field(default_factory=threading.Lock)
    reqs: list[Req] = field(default_factory=list)
    seen: dict[str, Seen] = field(default_factory=dict)
    keys_to_order: dict[tuple[int, str], str] = field(default_factory=dict)
    key_conflicts: list[str] = field(default_factory=list)
    abandoned: list[tuple[int, str, float]] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    flows: Counter = field(default_factory=Counter)
    refunds: list[RefundSeen] = field(default_factory=list)
    refund_requests: Counter = field(default_factory=Counter)  # outcomes of the buyers' refund requests
    refund_problems: list[str] = field(default_factory=list)  # a retried request answered inconsistently
    refund_refusals: list[str] = field(default_factory=list)  # examples of refused refund requests
    second_pay: Counter = field(default_factory=Counter)  # switchers pressing the first method's Pay too

    def add_req(self, req: Req) -> None:
        with self.lock:
            self.reqs.append(req)

    def add_seen(self, seen: Seen) -> None:
        with self.lock:
            previous = self.keys_to_order.get((seen.uid, seen.key))
            if previous and previous != seen.order_no:
                self.key_conflicts.append(f"user {seen.uid} key {seen.key}: {previous} and {seen.order_no}")
            self.keys_to_order[(seen.uid, seen.key)] = seen.order_no
            self.seen[seen.order_no] = seen

    def snapshot_seen(self) -> list[Seen]:
        with self.lock:
            return list(self.seen.values())

    def snapshot_refunds(self) -> list[RefundSeen]:
        with self.lock:
            return list(self.refunds)


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> dict:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def code(self) -> str:
        return str(self.json().get("code", ""))


class Http:
    """One keep-alive connection per client thread; a new one after any transport error."""

    def __init__(self, port: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def send_and_hang_up(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> None:
        """Sends a request and closes the connection without reading the answer: what a client
        whose read timed out (a phone losing its signal) knows of a request it made."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
        finally:
            conn.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass(frozen=True)
class PayForm:
    """The Pay button of a gateway's page (Alipay's cashier, WeChat Pay's scanned or H5 page)."""

    provider: str
    action: str
    body: bytes
    content_type: str


ALIPAY_CHANNELS = [("page", 4), ("wap", 1)]
WECHAT_CHANNELS = [("native", 7), ("h5", 3)]


class Client(threading.Thread):
    FLOWS = [("pay", 32), ("expire", 35), ("cancel", 12), ("race", 5), ("free", 5), ("switch", 6)]

    def __init__(self, n: int, *, ports: tuple[int, int], users: UserPool, stop, rec, args):
        port, gateway_port = ports
        super().__init__(name=f"client-{n}", daemon=True)
        self.port, self.users, self.stop_event = port, users, stop
        self.tokens = dict(users.items)
        self.gateway_port = gateway_port
        self.rec, self.args = rec, args
        self.rng = random.Random(args.seed * 1000 + n)
        self.http = Http(port, args.request_timeout)
        self.browser = Http(gateway_port, args.request_timeout)  # the buyer's tab on a gateway's page
        self.exhausted = False

    # one request, retried like a real client ------------------------------------------------
    def call(
        self, kind: str, method: str, path: str, *, token=None, body=None, headers=None, retry=True, conn=None
    ) -> tuple[Response | None, int]:
        """(the final Response, possibly a 4xx/5xx, or None when every attempt failed in
        transport; the number of attempts). `conn`: another connection than the thread's own."""
        conn = conn or self.http
        hdrs, data = self.prepare(token, body, headers)
        attempts = len(BACKOFF) + 1 if retry else 1
        last: Response | None = None
        for attempt in range(1, attempts + 1):
            t0 = now()
            try:
                resp = conn.request(method, path, data, hdrs)
                self.rec.add_req(Req(t0, now(), kind, resp.status, None))
                last = resp
                if resp.status < 500 and not (resp.status == 409 and resp.code in RETRY_409):
                    return resp, attempt
            except TimeoutError:
                self.rec.add_req(Req(t0, now(), kind, None, "timeout"))
                last = None
            except (OSError, http.client.HTTPException) as exc:
                self.rec.add_req(Req(t0, now(), kind, None, type(exc).__name__))
                last = None
            if attempt < attempts:
                self.back_off(attempt)
        return last, attempts

    @staticmethod
    def prepare(token, body, headers) -> tuple[dict[str, str], bytes | None]:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        return hdrs, data

    def back_off(self, attempt: int) -> None:
        time.sleep(BACKOFF[attempt - 1] * (0.75 + self.rng.random() / 2))

    # the flows ---------------------------------------------------------------------------------
    def run(self) -> None:
        flows, weights = zip(*self.FLOWS, strict=True)
        while not self.stop_event.is_set():
            taken = self.users.take()
            if taken is None:
                self.exhausted = True
                return
            uid = taken[0]
            flow = self.rng.choices(flows, weights)[0]
            try:
                self.one_order(uid, flow)
            except Exception as exc:  # a bug in the drill itself must not silently stop the load
                log(f"{self.name}: drill error on user {uid}: {exc!r}")
            time.sleep(self.args.think * (0.5 + self.rng.random()))
        self.http.close()

    def pick_method(self, provider: str | None = None) -> tuple[str, str]:
        provider = provider or ("wechat" if self.rng.random() < self.args.wechat_share else "alipay")
        channels, weights = zip(*(WECHAT_CHANNELS if provider == "wechat" else ALIPAY_CHANNELS), strict=True)
        return provider, self.rng.choices(channels, weights)[0]

    def one_order(self, uid: int, flow: str) -> None:
        token = self.tokens[uid]
        coupon = uid if self.rng.random() < 0.6 else None
        subtotal = sum(course_price(c) for c in user_courses(uid))
        due = subtotal - (COUPON_OFF if coupon else 0)
        if flow == "free":
            points = int(due * POINTS_PER_YUAN)  # covers everything: paid at once, 0.00
        else:
            points = self.rng.choice([0, 0, 0, 10, 50, 120, 300])
        key = uuid.uuid4().hex
        provider, channel = self.pick_method()
        body = {"pay_type": provider, "user_coupon_id": coupon, "points": points}
        resp, attempts = self.call(
            "place", "POST", "/api/v1/orders", token=token, body=body, headers={"Idempotency-Key": key}
        )
        if resp is None or resp.status >= 500 or (resp.status == 409 and resp.code in RETRY_409):
            with self.rec.lock:
                self.rec.abandoned.append((uid, key, now()))
            return
        if resp.status != 201:
            with self.rec.lock:
                self.rec.refused[f"place {resp.status} {resp.code}"] += 1
            return
        order = resp.json()
        seen = Seen(
            order_no=order["order_no"],
            uid=uid,
            key=key,
            flow=flow,
            status=order["status"],
            pay_amount=order["pay_amount"],
            points_used=int(order["points_used"]),
            user_coupon_id=order.get("user_coupon_id"),
            attempts=attempts,
            replayed=resp.headers.get("idempotent-replayed") == "true",
            t=now(),
            line_ids=[int(line["id"]) for line in order.get("lines", [])],
        )
        self.rec.add_seen(seen)
        with self.rec.lock:
            self.rec.flows[flow] += 1
        no = seen.order_no
        if flow == "pay":
            seen.provider = f"{provider}/{channel}"
            form = self.open_payment(no, token, provider, channel, open_page=True)
            if form:
                self.click_pay(seen, form, follow_return=self.rng.random() < 0.5)
                self.maybe_refund(seen, token)
        elif flow == "switch":
            # The buyer opens Alipay's cashier, changes their mind and pays with WeChat Pay: the
            # Alipay attempt is then closed. Some also press Alipay's Pay button afterwards, in the
            # tab they left open: the gateway refuses (closed) or takes the money, which goes back.
            seen.provider = "wechat/" + self.pick_method("wechat")[1]
            first = self.open_payment(no, token, *self.pick_method("alipay"), open_page=True)
            form = self.open_payment(no, token, "wechat", seen.provider.split("/")[1], open_page=True)
            if form:
                self.click_pay(seen, form, follow_return=False)
                if first and self.rng.random() < 0.3:
                    self.click_pay(seen, first, follow_return=False, second=True)
                self.maybe_refund(seen, token)
        elif flow == "free":
            self.maybe_refund(seen, token)
        elif flow == "cancel":
            if self.rng.random() < 0.5:
                self.open_payment(no, token, provider, channel, open_page=self.rng.random() < 0.5)
            time.sleep(0.2 + self.rng.random())  # the buyer hesitating
            self.cancel(seen, token)
        elif flow == "race":
            # The buyer clicks Pay while (another tab of) the shop cancels: one of them wins, never both.
            seen.provider = f"{provider}/{channel}"
            form = self.open_payment(no, token, provider, channel, open_page=True)
            if form:
                twin = Http(self.gateway_port, self.args.request_timeout)
                racer = threading.Thread(target=self.click_pay, args=(seen, form, False, twin), daemon=True)
                racer.start()
                self.cancel(seen, token)
                racer.join(self.args.request_timeout * (len(BACKOFF) + 2))
                twin.close()
        elif flow == "expire" and self.rng.random() < 0.5:
            # A payment was started (a trade opened at the gateway: always for WeChat Pay, for Alipay
            # when its cashier is opened), then the buyer walked away: expiry must ask the provider
            # and close the trade, not just flip the row.
            self.open_payment(no, token, provider, channel, open_page=self.rng.random() < 0.5)

    def open_payment(self, no: str, token: str, provider: str, channel: str, *, open_page: bool) -> PayForm | None:
        """POST /orders/{no}/pay for a provider and channel, then (open_page) GET the gateway's
        page (Alipay's cashier, the page of WeChat Pay's code_url or h5_url): its Pay form."""
        resp, _ = self.call(
            "pay_url", "POST", f"/api/v1/orders/{no}/pay", token=token, body={"provider": provider, "channel": channel}
        )
        if resp is None or resp.status != 200 or not open_page:
            return None
        start = resp.json()
        url = urlsplit(start.get("pay_url") or start.get("code_url") or start.get("h5_url") or "")
        page, _ = self.call("cashier", "GET", f"{url.path}?{url.query}", conn=self.browser)
        if page is None or page.status != 200:
            return None
        match = re.search(rb'<form method="post" action="([^"]+)"', page.body)
        if not match:
            return None
        redirect = re.search(rb'<input type="hidden" name="redirect_url" value="([^"]*)"', page.body)
        body = urlencode({"redirect_url": html.unescape(redirect.group(1).decode())}).encode() if redirect else b""
        content_type = "application/x-www-form-urlencoded" if redirect else "text/plain"
        return PayForm(provider, html.unescape(match.group(1).decode()), body, content_type)

    def click_pay(
        self, seen: Seen, form: PayForm, follow_return: bool, conn: Http | None = None, second: bool = False
    ) -> None:
        """A Pay button (the gateway then sends its signed notify); then, as a browser would, maybe
        the way back: Alipay's return URL, or WeChat H5's redirect to the order page."""
        resp, _ = self.call(
            "pay_click",
            "POST",
            form.action,
            body=form.body,
            headers={"Content-Type": form.content_type},
            conn=conn or self.browser,
        )
        if resp is None or resp.status not in (200, 302):
            if second:
                with self.rec.lock:
                    self.rec.second_pay["refused (trade closed)" if resp is not None else "no answer"] += 1
            return
        if second:
            with self.rec.lock:
                self.rec.second_pay["took the money"] += 1
            return
        seen.pay_clicked = True
        location = resp.headers.get("location", "")
        if conn is not None:
            return  # another tab (the race): the thread's own API connection is busy with the cancel
        if resp.status == 302 and f"/orders/{seen.order_no}" in location:
            # WeChat H5: the shop's order page, which asks the API how the payment went.
            self.call("return", "GET", f"/api/v1/orders/{seen.order_no}", token=self.tokens[seen.uid])
        elif follow_return and resp.status == 302 and "/api/v1/payments/alipay/return" in location:
            url = urlsplit(location)
            self.call("return", "GET", f"{url.path}?{url.query}")

    def cancel(self, seen: Seen, token: str) -> None:
        resp, _ = self.call("cancel", "POST", f"/api/v1/orders/{seen.order_no}/cancel", token=token)
        if resp is None:
            seen.cancel_answer = "transport"
        elif resp.status == 200:
            seen.cancel_answer = "ok"
        else:
            seen.cancel_answer = f"{resp.status} {resp.code}"

    # refunds -------------------------------------------------------------------------------------
    def maybe_refund(self, seen: Seen, token: str) -> None:
        """Some buyers of a paid order ask for their money back: for one line (and some of them
        later for the rest), or for every line at once."""
        if self.rng.random() >= self.args.refund_share or not seen.line_ids:
            return
        if seen.status != "paid" and not self.wait_until_paid(seen, token):
            with self.rec.lock:
                self.rec.refund_requests["not asked: the order was not paid yet"] += 1
            return
        lines = list(seen.line_ids)
        if len(lines) > 1 and self.rng.random() < 0.6:
            part = [self.rng.choice(lines)]
            self.request_refund(seen, token, part)
            if self.rng.random() < 0.4:
                self.request_refund(seen, token, [line for line in lines if line not in part])
        else:
            self.request_refund(seen, token, lines)

    def wait_until_paid(self, seen: Seen, token: str) -> bool:
        """The order page, reloaded until it shows the payment (the notify may be a moment late)."""
        for attempt in range(1, len(BACKOFF) + 1):
            resp, _ = self.call("order", "GET", f"/api/v1/orders/{seen.order_no}", token=token)
            if resp is not None and resp.status == 200 and resp.json().get("status") == "paid":
                return True
            self.back_off(attempt)
        return False

    def request_refund(self, seen: Seen, token: str, line_ids: list[int]) -> None:
        """POST /orders/{no}/refunds as the shop pages send it: with an Idempotency-Key, the same
        for every retry. A request sent again after its answer was lost is answered with the
        refund the first one made (201, Idempotent-Replayed); a 409 for the lines that request
        took would mean the key was not honoured, and is recorded as a problem. Some requests here
        lose their first answer on purpose."""
        path = f"/api/v1/orders/{seen.order_no}/refunds"
        body = {"order_line_ids": line_ids, "reason": "fault drill"}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        hung_up = self.rng.random() < self.args.refund_hang_up
        if hung_up:
            hdrs, data = self.prepare(token, body, headers)
            try:
                self.http.send_and_hang_up("POST", path, data, hdrs)
            except (OSError, http.client.HTTPException):
                pass
            self.back_off(1)
        resp, attempts = self.call("refund", "POST", path, token=token, body=body, headers=headers)
        uncertain = hung_up or attempts > 1
        if resp is None or resp.status != 201:
            with self.rec.lock:
                if resp is not None and resp.status == 409 and resp.code in REFUND_RETRY_409 and uncertain:
                    self.rec.refund_problems.append(
                        f"{seen.order_no} lines {line_ids}: sent again with its Idempotency-Key, refused as {resp.code}"
                    )
                    return
                what = "no answer" if resp is None else f"{resp.status} {resp.code}"
                self.rec.refund_requests[f"refused: {what}"] += 1
                if resp is not None and len(self.rec.refund_refusals) < 8:
                    self.rec.refund_refusals.append(f"{seen.order_no} lines {line_ids}: {resp.json()}")
            return
        refund = resp.json()
        replayed = resp.headers.get("idempotent-replayed") == "true"
        outcome = "201 replayed after a retry" if replayed else "201 after a retry" if uncertain else "201"
        got = sorted(int(line["order_line_id"]) for line in refund.get("lines", []))
        with self.rec.lock:
            if got != sorted(line_ids):
                self.rec.refund_problems.append(f"{seen.order_no}: asked for lines {line_ids}, refund covers {got}")
            if replayed and not uncertain:
                self.rec.refund_problems.append(f"{seen.order_no}: a request sent once was answered as a replay")
            self.rec.refund_requests[outcome + (" (answer lost on purpose)" if hung_up else "")] += 1
            self.rec.refunds.append(
                RefundSeen(seen.order_no, int(refund["id"]), sorted(line_ids), str(refund.get("amount")), outcome)
            )
