"""Paying an order: `POST /orders/{no}/pay`, Alipay's notify and the browser's return.

Notifies are signed with the dev gateway's "Alipay" key through `signed_notify_params` (or with a
foreign key, to be refused) and POSTed form-encoded through the real URL stack. Nothing here
needs Alipay to answer: the gateway URL points at a port where nothing listens, so a code path
that called Alipay unexpectedly would fail loudly instead of reaching some other server.
"""

import json
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from billing.alipay.formats import beijing_time
from billing.alipay.signing import verify_request
from billing.dev_gateway import keys as dev_keys
from billing.dev_gateway.notify import signed_notify_params, signed_return_params
from billing.models import DevGatewayTrade, PaymentNotification, PointsAccount, PointsEntry, UserCoupon
from core.models import Enrollment
from orders import events, services
from orders.models import CartItem, Order, PaymentAttempt
from orders.services.providers import ProviderError
from tests.conftest import ApiClient, assert_error, assert_ledger_consistent
from tests.factories import CourseFactory, UserFactory, fill_cart, give_coupon, give_points
from tests.payment_support import (
    APP_ID,
    DEAD_BASE_URL,
    FOREIGN_APP_ID,
    FRONTEND_URL,
    RETURN_PATH,
    attempts_of,
    key_dir,
    last_notification,
    notify_answer,
    open_alipay_attempt,
    order_snapshot,
    other_private_key,
    place_order,
    post_notify,
    query_params,
    use_dev_gateway,
)

pytestmark = pytest.mark.django_db

UNKNOWN_ORDER_NO = "20990101000000000000009999"


@pytest.fixture(autouse=True)
def alipay_settings(settings, tmp_path_factory):
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))
    return settings


def pending_order(user, key: str = "k") -> tuple[dict, UserCoupon]:
    """A pending order holding a coupon (20.00 off) and 30 points (3.00 off): pays 134.99, with its
    Alipay page-pay attempt open (out_trade_no = order_no)."""
    fill_cart(user, "100.00", "57.99")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    order = place_order(user, key, user_coupon_id=coupon.pk, points=30)
    assert (order["status"], order["pay_amount"]) == ("pending", "134.99")
    open_alipay_attempt(user, order["order_no"])
    return order, coupon


def notify_for(order: dict, **overrides) -> dict[str, str]:
    return signed_notify_params({"out_trade_no": order["order_no"], "total_amount": order["pay_amount"]}, **overrides)


def points_balance(user) -> int:
    return PointsAccount.objects.get(user=user).balance


def assert_untouched(user, order: dict, coupon: UserCoupon, before: dict) -> None:
    """A notify that pays nothing left the order, its coupon, its points and the courses alone."""
    assert order_snapshot(order["order_no"]) == before
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order.order_no) == ("locked", order["order_no"])
    assert not Enrollment.objects.filter(user=user).exists()
    assert points_balance(user) == 70
    assert not PointsEntry.objects.filter(reason=PointsEntry.Reason.ORDER_EARNED).exists()
    assert_ledger_consistent()


# POST /orders/{order_no}/pay -------------------------------------------------------------------


def test_pay_answers_a_signed_page_pay_url_for_a_pending_order(api, user, settings):
    fill_cart(user, "100.00", "57.99")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    order = place_order(user, user_coupon_id=coupon.pk, points=30)
    before = timezone.now()
    response = api.post(f"/orders/{order['order_no']}/pay")  # no body: the order's pay_type, page pay
    assert response.status_code == 200, response.content
    assert response.json() | {"pay_url": "-"} == {
        "provider": "alipay",
        "channel": "page",
        "pay_url": "-",
        "code_url": None,
        "h5_url": None,
    }
    url = response.json()["pay_url"]

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == DEAD_BASE_URL + "/dev/alipay/gateway.do"
    params = query_params(url)
    # Signed with the app's private key: verifies with the app's public key (and not Alipay's).
    assert verify_request(params, dev_keys.app_public_key())
    assert not verify_request(params, dev_keys.gateway_public_key())
    cheaper = params["biz_content"].replace('"total_amount":"134.99"', '"total_amount":"0.01"')
    assert cheaper != params["biz_content"]
    assert not verify_request({**params, "biz_content": cheaper}, dev_keys.app_public_key())
    assert params["method"] == "alipay.trade.page.pay"
    assert (params["app_id"], params["sign_type"], params["charset"]) == ("2021000000000000", "RSA2", "utf-8")
    assert params["notify_url"] == settings.ALIPAY_NOTIFY_URL == DEAD_BASE_URL + "/api/v1/payments/alipay/notify"
    assert params["return_url"] == settings.ALIPAY_RETURN_URL == DEAD_BASE_URL + RETURN_PATH

    stored = Order.objects.get(order_no=order["order_no"])
    biz = json.loads(params["biz_content"])
    assert biz["out_trade_no"] == order["order_no"]
    assert biz["total_amount"] == "134.99"
    assert biz["product_code"] == "FAST_INSTANT_TRADE_PAY"
    # The Alipay trade ends when the order does, written in Beijing time.
    assert biz["time_expire"] == beijing_time(stored.expires_at)
    assert len(biz["time_expire"]) == len("2026-01-01 00:00:00")
    assert biz["subject"] == f"{stored.lines.first().name} 等2门课程"

    attempt = PaymentAttempt.objects.get(order=stored)
    assert (attempt.out_trade_no, attempt.amount, attempt.status) == (order["order_no"], Decimal("134.99"), "open")
    assert before <= attempt.created_at <= timezone.now()
    # Asking again, with or without a body, gives a URL for the same trade: the attempt is reused.
    for body in (None, {"provider": "alipay", "channel": "page"}):
        again = api.post(f"/orders/{order['order_no']}/pay", body)
        assert again.status_code == 200
        assert json.loads(query_params(again.json()["pay_url"])["biz_content"])["out_trade_no"] == order["order_no"]
    assert attempts_of(order["order_no"]) == [(order["order_no"], "alipay", "page", "open", "")]
    assert Order.objects.get(order_no=order["order_no"]).status == "pending"


def test_pay_url_subject_of_a_single_course_order_is_its_name_without_what_alipay_forbids(api, user):
    # Alipay forbids `/`, `=` and `&` in subject: they become spaces.
    course = CourseFactory(name="Python 入门 + 进阶 a=b&c/d", price="9.90")
    api.post("/cart/items", {"course_id": course.pk})
    order = place_order(user)
    params = query_params(api.post(f"/orders/{order['order_no']}/pay").json()["pay_url"])
    assert verify_request(params, dev_keys.app_public_key())
    biz = json.loads(params["biz_content"])
    assert (biz["subject"], biz["total_amount"]) == ("Python 入门 + 进阶 a b c d", "9.90")


def test_pay_refuses_paid_cancelled_and_overdue_orders(api, user):
    # Paid by a notify.
    paid, _ = pending_order(user, "paid")
    assert notify_answer(post_notify(notify_for(paid))) == "success"
    body = assert_error(api.post(f"/orders/{paid['order_no']}/pay"), 409, "order_not_payable")
    assert body["details"]["status"] == "paid"

    # Paid at once (nothing to pay): no Alipay trade can ever be opened for it.
    fill_cart(user, "10.00")
    free_coupon = give_coupon(user, threshold="0.00", amount_off="10.00")
    free = place_order(user, "free", user_coupon_id=free_coupon.pk)
    assert (free["status"], free["pay_amount"]) == ("paid", "0.00")
    assert_error(api.post(f"/orders/{free['order_no']}/pay"), 409, "order_not_payable")

    # Cancelled by the user.
    fill_cart(user, "20.00")
    cancelled = place_order(user, "cancelled")
    assert api.post(f"/orders/{cancelled['order_no']}/cancel").status_code == 200
    body = assert_error(api.post(f"/orders/{cancelled['order_no']}/pay"), 409, "order_not_payable")
    assert body["details"]["status"] == "cancelled"

    # Still pending, but its deadline has passed (the expiry has not run yet).
    fill_cart(user, "30.00")
    overdue = place_order(user, "overdue")
    Order.objects.filter(order_no=overdue["order_no"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    body = assert_error(api.post(f"/orders/{overdue['order_no']}/pay"), 409, "order_not_payable")
    assert body["details"]["status"] == "pending"

    for order_no in (free["order_no"], cancelled["order_no"], overdue["order_no"]):
        assert attempts_of(order_no) == []
    assert Order.objects.get(order_no=overdue["order_no"]).status == "pending"


def test_pay_for_another_users_order_is_404_and_needs_a_token(api, user, other_user):
    theirs, _ = pending_order(other_user)
    assert_error(api.post(f"/orders/{theirs['order_no']}/pay"), 404, "order_not_found")
    assert_error(api.post(f"/orders/{UNKNOWN_ORDER_NO}/pay"), 404, "order_not_found")
    assert_error(ApiClient().post(f"/orders/{theirs['order_no']}/pay"), 401, "not_authenticated")
    bad_token = ApiClient().post(f"/orders/{theirs['order_no']}/pay", headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401
    assert len(attempts_of(theirs["order_no"])) == 1  # the owner's own, opened by pending_order


# POST /payments/alipay/notify: paying ---------------------------------------------------------


def test_valid_notify_pays_the_order(api, user):
    order, coupon = pending_order(user)
    order_no = order["order_no"]
    line_course_ids = sorted(line["course_id"] for line in order["lines"])
    # After placing, the buyer put one of the order's courses back in the cart, and another one.
    other_course = CourseFactory(price="5.00")
    assert api.post("/cart/items", {"course_id": line_course_ids[0]}).status_code == 201
    assert api.post("/cart/items", {"course_id": other_course.pk}).status_code == 201
    params = notify_for(order, subject="Python 入门 等2门课程")

    response = post_notify(params)

    assert notify_answer(response) == "success"
    stored = Order.objects.get(order_no=order_no)
    assert stored.status == "paid"
    assert attempts_of(order_no) == [(order_no, "alipay", "page", "paid", params["trade_no"])]
    assert stored.paid_at is not None and stored.cancelled_at is None
    enrolled = Enrollment.objects.filter(user=user).order_by("course_id")
    assert [(e.course_id, e.order_id) for e in enrolled] == [(cid, stored.pk) for cid in line_course_ids]
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_id) == ("used", stored.pk)
    # The order's courses left the cart; the other course stays.
    assert list(CartItem.objects.filter(user=user).values_list("course_id", flat=True)) == [other_course.pk]
    # floor(134.99) = 134 points earned, through the ledger: 100 - 30 + 134.
    earned = PointsEntry.objects.get(reason=PointsEntry.Reason.ORDER_EARNED)
    assert (earned.delta, earned.order_id, earned.balance_after) == (134, stored.pk, 204)
    assert points_balance(user) == 204
    assert_ledger_consistent()

    notification = PaymentNotification.objects.get()
    assert (notification.verdict, notification.order_id) == ("paid", stored.pk)
    assert (notification.out_trade_no, notification.trade_no) == (order_no, params["trade_no"])
    assert (notification.notify_id, notification.total_amount) == (params["notify_id"], "134.99")
    assert notification.raw == params

    body = api.get(f"/orders/{order_no}").json()
    assert body["status"] == "paid" and body["paid_at"]
    assert_error(api.post("/cart/items", {"course_id": line_course_ids[1]}), 409, "already_purchased")


def test_trade_finished_also_pays(user):
    order, coupon = pending_order(user)
    assert notify_answer(post_notify(notify_for(order, trade_status="TRADE_FINISHED"))) == "success"
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"
    assert last_notification().verdict == "paid"
    coupon.refresh_from_db()
    assert coupon.status == "used"
    assert Enrollment.objects.filter(user=user).count() == 2


def test_duplicate_notifies_answer_success_and_change_nothing_more(user):
    order, _ = pending_order(user)
    params = notify_for(order)
    assert notify_answer(post_notify(params)) == "success"
    paid_at = Order.objects.get(order_no=order["order_no"]).paid_at

    # Alipay resends the same notify (same notify_id), then TRADE_FINISHED for the same trade.
    assert notify_answer(post_notify(params)) == "success"
    finished = notify_for(order, trade_no=params["trade_no"], trade_status="TRADE_FINISHED")
    assert notify_answer(post_notify(finished)) == "success"

    assert list(PaymentNotification.objects.order_by("id").values_list("verdict", flat=True)) == [
        "paid",
        "duplicate",
        "duplicate",
    ]
    stored = Order.objects.get(order_no=order["order_no"])
    assert (stored.status, stored.paid_at) == ("paid", paid_at)
    assert attempts_of(order["order_no"])[0][3:] == ("paid", params["trade_no"])
    assert Enrollment.objects.filter(user=user).count() == 2
    assert PointsEntry.objects.filter(reason=PointsEntry.Reason.ORDER_EARNED).count() == 1
    assert points_balance(user) == 204
    assert_ledger_consistent()


def test_plus_spaces_and_chinese_in_fields_verify_when_form_encoded(user):
    order, _ = pending_order(user)
    params = notify_for(
        order,
        subject="Python 入门 + 进阶 a=b&c 100%",
        body="课程 + 空格  两个空格",
        buyer_logon_id="张三+test user@example.com",
        passback_params="a+b c%2B",
    )
    assert notify_answer(post_notify(params)) == "success"
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"
    notification = last_notification()
    assert notification.verdict == "paid"
    assert notification.raw["subject"] == "Python 入门 + 进阶 a=b&c 100%"
    assert notification.raw["buyer_logon_id"] == "张三+test user@example.com"


def test_a_plus_sent_unencoded_is_a_space_and_fails_verification(user):
    # Form decoding turns a raw `+` into a space: values are decoded once, then verified, so a
    # sender that forgot to encode `+` changes the signed text and is refused.
    order, coupon = pending_order(user)
    before = order_snapshot(order["order_no"])
    params = notify_for(order, subject="a+b")
    body = urlencode(params).replace("subject=a%2Bb", "subject=a+b")
    assert "subject=a+b" in body
    assert notify_answer(post_notify(body)) == "failure"
    assert (last_notification().verdict, last_notification().reason) == ("rejected", "bad signature")
    # Kept as a short summary: the start of the body as it came, not the fields as decoded.
    assert last_notification().raw["body"] == body[:200]
    assert_untouched(user, order, coupon, before)


# POST /payments/alipay/notify: everything that must not pay ----------------------------------


def forged(order):
    return notify_for(order, private_key=other_private_key())


def amount_tampered_after_signing(order):
    params = notify_for(order)
    params["total_amount"] = "0.01"
    return params


def trade_status_tampered_after_signing(order):
    params = notify_for(order, trade_status="WAIT_BUYER_PAY")
    params["trade_status"] = "TRADE_SUCCESS"
    return params


def sign_removed(order):
    params = notify_for(order)
    del params["sign"]
    return params


def sign_not_base64(order):
    return {**notify_for(order), "sign": "this is not base64!"}


def sign_truncated(order):
    params = notify_for(order)
    return {**params, "sign": params["sign"][:-8]}


def sign_of_another_notify(order):
    other = notify_for(order, total_amount="0.01")
    return {**notify_for(order), "sign": other["sign"]}


REJECTED = [
    pytest.param(forged, "failure", "rejected", id="signed-with-another-key"),
    pytest.param(amount_tampered_after_signing, "failure", "rejected", id="amount-tampered-after-signing"),
    pytest.param(trade_status_tampered_after_signing, "failure", "rejected", id="status-tampered-after-signing"),
    pytest.param(sign_removed, "failure", "rejected", id="no-sign"),
    pytest.param(sign_not_base64, "failure", "rejected", id="sign-not-base64"),
    pytest.param(sign_truncated, "failure", "rejected", id="sign-truncated"),
    pytest.param(sign_of_another_notify, "failure", "rejected", id="sign-of-another-notify"),
    pytest.param(lambda o: notify_for(o, total_amount="0.01"), "failure", "rejected", id="signed-lower-amount"),
    pytest.param(lambda o: notify_for(o, total_amount="1134.99"), "failure", "rejected", id="signed-higher-amount"),
    pytest.param(lambda o: notify_for(o, total_amount="abc"), "failure", "rejected", id="signed-amount-not-a-number"),
    pytest.param(lambda o: notify_for(o, total_amount=None), "failure", "rejected", id="signed-without-amount"),
    pytest.param(lambda o: notify_for(o, app_id=FOREIGN_APP_ID), "failure", "rejected", id="signed-other-app-id"),
    pytest.param(lambda o: notify_for(o, app_id=None), "failure", "rejected", id="signed-without-app-id"),
    pytest.param(
        lambda o: notify_for(o, out_trade_no=UNKNOWN_ORDER_NO), "failure", "rejected", id="signed-unknown-order"
    ),
    pytest.param(
        lambda o: notify_for(o, out_trade_no=UNKNOWN_ORDER_NO, trade_status="WAIT_BUYER_PAY"),
        "failure",
        "ignored",
        id="signed-unknown-order-waiting",
    ),
    # Valid, ours and known, but not a payment: nothing to do, and Alipay may stop sending it.
    pytest.param(
        lambda o: notify_for(o, trade_status="WAIT_BUYER_PAY", gmt_payment=None), "success", "ignored", id="waiting"
    ),
    pytest.param(lambda o: notify_for(o, trade_status="TRADE_CLOSED"), "success", "ignored", id="closed"),
    pytest.param(lambda o: notify_for(o, trade_status="TRADE_PENDING"), "success", "ignored", id="unknown-status"),
]


@pytest.mark.parametrize(("make_params", "answer", "verdict"), REJECTED)
def test_notify_that_is_not_a_valid_payment_changes_nothing(user, make_params, answer, verdict):
    order, coupon = pending_order(user)
    before = order_snapshot(order["order_no"])
    params = make_params(order)

    assert notify_answer(post_notify(params)) == answer

    notification = PaymentNotification.objects.get()
    assert notification.verdict == verdict, notification.reason
    if notification.reason == "bad signature":  # anyone could have sent it: a short summary only
        assert set(notification.raw) == {"notify_id", "out_trade_no", "body", "remote_addr"}
        assert notification.raw["body"] == urlencode(params)[:200]
        assert notification.out_trade_no == params["out_trade_no"]
    else:  # signed by Alipay: kept whole
        assert notification.raw == params
    if answer == "success":  # ignored, but filed under its order
        assert notification.order.order_no == order["order_no"]
    assert_untouched(user, order, coupon, before)
    # The genuine notify still pays afterwards: nothing was spent or locked by the bad one.
    assert notify_answer(post_notify(notify_for(order))) == "success"
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"


def test_seller_id_is_checked_when_configured(user, settings):
    settings.ALIPAY_SELLER_ID = "2088000000000077"
    order, coupon = pending_order(user)
    before = order_snapshot(order["order_no"])
    assert notify_answer(post_notify(notify_for(order, seller_id="2088000000000001"))) == "failure"
    assert last_notification().verdict == "rejected"
    assert_untouched(user, order, coupon, before)
    assert notify_answer(post_notify(notify_for(order))) == "success"  # seller_id() is the configured one
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"


def paying_fields(order_no: str) -> bytes:
    return f"out_trade_no={order_no}&total_amount=134.99&trade_status=TRADE_SUCCESS&app_id={APP_ID}".encode()


GARBAGE = [
    pytest.param(lambda no: b"", id="no-fields"),
    pytest.param(lambda no: b"foo=bar&baz=1&sign=abc", id="random-fields"),
    pytest.param(lambda no: paying_fields(no) + b"&subject=\xff\xfe\xfd&sign=\xc3\x28", id="raw-non-utf8"),
    pytest.param(lambda no: paying_fields(no) + b"&subject=%FF%FE&sign=%C3%28", id="encoded-non-utf8"),
    pytest.param(lambda no: paying_fields(no) + b"&sign=%%%&&&===&total_amount", id="malformed-encoding"),
    pytest.param(lambda no: b"\xff\xfe" * 50, id="binary"),
]


@pytest.mark.parametrize("make_body", GARBAGE)
def test_garbage_notify_answers_failure_and_is_recorded(user, make_body):
    order, coupon = pending_order(user)
    before = order_snapshot(order["order_no"])

    assert notify_answer(post_notify(make_body(order["order_no"]))) == "failure"

    notification = PaymentNotification.objects.get()
    assert notification.verdict == "rejected"
    assert notification.order_id is None
    assert_untouched(user, order, coupon, before)


@pytest.mark.django_db(transaction=True)
def test_notify_with_a_nul_byte_is_still_recorded(user):
    """DESIGN.md: every notify received is stored with its verdict; Postgres text refuses NUL."""
    order, coupon = pending_order(user)
    before = order_snapshot(order["order_no"])
    params = notify_for(order)
    params["out_trade_no"] = order["order_no"] + "\x00"
    assert notify_answer(post_notify(params)) == "failure"
    assert_untouched(user, order, coupon, before)
    notification = PaymentNotification.objects.get()
    assert notification.verdict == "rejected"


def test_notify_with_get_or_json_is_not_a_payment(user):
    order, coupon = pending_order(user)
    before = order_snapshot(order["order_no"])
    params = notify_for(order)
    as_json = Client().post("/api/v1/payments/alipay/notify", data=params, content_type="application/json")
    assert notify_answer(as_json) == "failure"
    as_get = Client().get("/api/v1/payments/alipay/notify", data=params)
    assert as_get.status_code == 405
    assert_untouched(user, order, coupon, before)


def test_notify_after_the_deadline_but_before_the_expiry_ran_still_pays(user):
    # The money has arrived: an overdue order the expiry has not cancelled yet is paid, not lost.
    order, coupon = pending_order(user)
    Order.objects.filter(order_no=order["order_no"]).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert notify_answer(post_notify(notify_for(order))) == "success"
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"
    coupon.refresh_from_db()
    assert coupon.status == "used"
    assert services.cancel_expired_order(order_no=order["order_no"]) == "skipped"
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"


def test_expiry_never_guesses_when_alipay_cannot_be_asked(api, user):
    """A pay URL was signed, so Alipay may hold a trade; with Alipay unreachable the expiry raises
    (the message is retried) and the sweeper leaves the order for its next run."""
    order, coupon = pending_order(user)
    assert api.post(f"/orders/{order['order_no']}/pay").status_code == 200
    Order.objects.filter(order_no=order["order_no"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = order_snapshot(order["order_no"])

    with pytest.raises(ProviderError):
        services.cancel_expired_order(order_no=order["order_no"])
    report = services.sweep_overdue_orders()
    assert (report.outcomes, report.failed) == ({}, 1)

    assert_untouched(user, order, coupon, before)
    # The notify of a payment made meanwhile still settles it.
    assert notify_answer(post_notify(notify_for(order))) == "success"
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"


# A notify for an order we had already cancelled ------------------------------------------------


def test_notify_for_a_cancelled_order_is_recorded_and_a_refund_is_started(
    api, user, django_capture_on_commit_callbacks
):
    order, coupon = pending_order(user)
    order_no = order["order_no"]
    assert api.post(f"/orders/{order_no}/cancel").status_code == 200
    params = notify_for(order)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = notify_answer(post_notify(params))

    # Workers subscribe to refund_needed (workers.apps): the refund is handed to the worker.
    assert answer == "success"
    assert len(callbacks) == 1
    notification = PaymentNotification.objects.get()
    assert (notification.verdict, notification.order.order_no) == ("refund_required", order_no)
    stored = Order.objects.get(order_no=order_no)
    assert (stored.status, stored.paid_at, stored.refunded_at) == ("cancelled", None, None)
    # The attempt keeps the trade number so the money can be given back.
    assert attempts_of(order_no) == [(order_no, "alipay", "page", "refund_required", params["trade_no"])]
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_id) == ("unused", None)
    assert points_balance(user) == 100
    assert not Enrollment.objects.filter(user=user).exists()
    assert not PointsEntry.objects.filter(reason=PointsEntry.Reason.ORDER_EARNED).exists()
    assert_ledger_consistent()

    # Alipay resends: the refund is already owed (and retried by the worker and the sweeper).
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert notify_answer(post_notify(params)) == "success"
    assert callbacks == []
    assert last_notification().verdict == "duplicate"
    assert Order.objects.get(order_no=order_no).status == "cancelled"


def test_money_owed_back_is_kept_until_the_sweeper_refunds_it(user, monkeypatch):
    """No worker subscribed and Alipay unreachable: the notify is still answered (the refund is
    recorded as owed, durably), and every sweep tries the refund again until it goes through."""
    monkeypatch.setattr(events, "_refund_needed", [])
    order, _ = pending_order(user)
    assert ApiClient(user).post(f"/orders/{order['order_no']}/cancel").status_code == 200
    params = notify_for(order)
    assert notify_answer(post_notify(params)) == "success"
    assert last_notification().verdict == "refund_required"
    report = services.sweep_overdue_orders()
    assert (report.refunded, report.failed) == (0, 1)
    assert attempts_of(order["order_no"])[0][3] == "refund_required"
    assert Order.objects.get(order_no=order["order_no"]).status == "cancelled"


# GET /payments/alipay/return ------------------------------------------------------------------


def return_trade(order: dict) -> DevGatewayTrade:
    """The trade a return names (unsaved: only its fields are signed into the return)."""
    return DevGatewayTrade(
        out_trade_no=order["order_no"],
        trade_no="2026010122001400000000000042",
        total_amount=Decimal(order["pay_amount"]),
    )


@pytest.mark.parametrize(
    "make_params",
    [
        pytest.param(lambda o: signed_return_params(return_trade(o), private_key=other_private_key()), id="forged"),
        pytest.param(lambda o: {**signed_return_params(return_trade(o)), "total_amount": "0.01"}, id="tampered-amount"),
        pytest.param(lambda o: signed_return_params(return_trade(o), app_id=FOREIGN_APP_ID), id="other-app-id"),
        pytest.param(lambda o: {**signed_return_params(return_trade(o)), "sign": "%%%"}, id="sign-not-base64"),
    ],
)
def test_return_with_a_bad_signature_redirects_with_invalid_signature(user, make_params):
    order, coupon = pending_order(user)
    before = order_snapshot(order["order_no"])
    response = Client().get(RETURN_PATH, data=make_params(order))

    assert response.status_code == 302
    assert response["Location"] == f"{FRONTEND_URL}/orders/{order['order_no']}?payment=invalid_signature"
    assert_untouched(user, order, coupon, before)
    assert not PaymentNotification.objects.exists()


def test_return_without_parameters_goes_to_the_orders_page():
    # The cashier's Cancel link comes back with nothing at all.
    response = Client().get(RETURN_PATH)
    assert response.status_code == 302
    assert response["Location"] == f"{FRONTEND_URL}/orders?payment=invalid_signature"


def test_return_for_an_unknown_order_says_so():
    trade = DevGatewayTrade(out_trade_no=UNKNOWN_ORDER_NO, trade_no="1", total_amount=Decimal("1.00"))
    response = Client().get(RETURN_PATH, data=signed_return_params(trade))
    assert response.status_code == 302
    assert response["Location"] == f"{FRONTEND_URL}/orders?payment=unknown_order"


def test_return_cannot_smuggle_an_outcome_through_the_order_number(user):
    """An unsigned return echoes out_trade_no into the redirect; it must stay inside the path."""
    order, _ = pending_order(user)
    crafted = f"{order['order_no']}?payment=paid#"
    response = Client().get(RETURN_PATH, data={"out_trade_no": crafted, "sign": "x"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == FRONTEND_URL
    assert query_params(response["Location"]) == {"payment": "invalid_signature"}, response["Location"]
    assert location.fragment == ""


def test_other_users_cannot_see_a_paid_order(user):
    order, _ = pending_order(user)
    assert notify_answer(post_notify(notify_for(order))) == "success"
    stranger = ApiClient(UserFactory())
    assert_error(stranger.get(f"/orders/{order['order_no']}"), 404, "order_not_found")
    assert_error(stranger.post(f"/orders/{order['order_no']}/pay"), 404, "order_not_found")


def test_wap_pay_sends_a_phone_back_to_the_order_page_as_left_unpaid(api, user):
    fill_cart(user, "30.00")
    order = place_order(user)
    started = api.post(f"/orders/{order['order_no']}/pay", {"provider": "alipay", "channel": "wap"}).json()
    assert (started["provider"], started["channel"]) == ("alipay", "wap")
    params = query_params(started["pay_url"])
    assert params["method"] == "alipay.trade.wap.pay"
    assert verify_request(params, dev_keys.app_public_key())
    biz = json.loads(params["biz_content"])
    assert biz["product_code"] == "QUICK_WAP_WAY"
    assert biz["quit_url"] == f"{FRONTEND_URL}/orders/{order['order_no']}?payment=left"
    assert attempts_of(order["order_no"]) == [(order["order_no"], "alipay", "wap", "open", "")]
