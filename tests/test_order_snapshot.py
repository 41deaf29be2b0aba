"""An order is read in one snapshot: GET /orders/{no} and GET /orders read the order, then its
lines, attempts and refunds in separate queries, and a refund that commits between them must not
show beside the order as it was before (a refund `succeeded` on an order still `paid`). The commit
is forced between the queries, from another connection."""

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from orders import events
from orders.models import Order, Refund
from tests.conftest import ApiClient
from tests.payment_support import DEAD_BASE_URL, key_dir, use_dev_gateway
from tests.refund_support import ask_refund, line_ids, order_with_discounts, pay_by_alipay_notify

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def alipay_settings(settings, tmp_path_factory, monkeypatch):
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))
    settings.REFUND_AUTO_APPROVE = False
    monkeypatch.setattr(events, "refund_approved", lambda request_no: None)  # nothing is sent


def refund_succeeds_elsewhere(refund_id: int, order_id: int) -> None:
    """What the refund's success commits, in one transaction of another connection."""

    def commit() -> None:
        try:
            with transaction.atomic():
                Refund.objects.filter(pk=refund_id).update(status=Refund.Status.SUCCEEDED)
                Order.objects.filter(pk=order_id).update(status=Order.Status.PARTIALLY_REFUNDED)
        finally:
            connection.close()

    thread = threading.Thread(target=commit)
    thread.start()
    thread.join()


@pytest.mark.parametrize("path", ["/orders/{}", "/orders"])
def test_a_refund_committed_between_the_queries_of_an_order_read_is_not_half_seen(user, path):
    order = pay_by_alipay_notify(user, order_with_discounts(user, "100.00", "57.99"))
    assert ask_refund(user, order.order_no, line_ids(order.order_no)[:1]).status_code == 201
    refund = Refund.objects.get()
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.PROCESSING, decided_at=timezone.now())
    committed = []

    def after_the_order_row(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not committed and 'FROM "orders_order"' in sql:
            refund_succeeds_elsewhere(refund.pk, order.pk)
            committed.append(sql)
        return result

    with connection.execute_wrapper(after_the_order_row):
        response = ApiClient(user).get(path.format(order.order_no))
    assert committed, "the refund never committed between the queries: this test proves nothing"
    assert response.status_code == 200
    body = response.json()
    seen = body if path == "/orders/{}" else body["items"][0]
    assert (seen["status"], seen["refunds"][0]["status"]) == ("paid", "processing")
    # The next read sees both.
    seen = ApiClient(user).get(f"/orders/{order.order_no}").json()
    assert (seen["status"], seen["refunds"][0]["status"]) == ("partially_refunded", "succeeded")
