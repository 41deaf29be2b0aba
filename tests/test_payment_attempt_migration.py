"""The data migration that moves each order's Alipay state into a payment attempt."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("orders", "0004_payment_attempt")]
AFTER = [("orders", "0005_payment_attempts_from_orders")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    # Only orders goes back; core stays migrated, so the historical User the test creates must be
    # core's latest, with every column its table has (a NOT NULL one it lacked would fail the insert).
    targets = [*targets, *executor.loader.graph.leaf_nodes("core")]
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_each_orders_alipay_state_becomes_an_attempt():
    apps = migrate(BEFORE)
    try:
        User = apps.get_model("core", "User")
        Order = apps.get_model("orders", "Order")
        user = User.objects.create(username="migrated")
        now = timezone.now()
        signed = now - timedelta(minutes=5)

        def order(no: str, status: str, **fields):
            return Order.objects.create(
                order_no=no,
                user=user,
                status=status,
                subtotal=Decimal("99.00"),
                pay_amount=Decimal("99.00"),
                idempotency_key=no,
                request_fingerprint="f",
                expires_at=now + timedelta(minutes=30),
                **fields,
            )

        order("1001", "pending")  # never asked for a pay URL: no trade can exist
        order("1002", "pending", pay_requested_at=signed)
        order("1003", "paid", pay_requested_at=signed, trade_no="T3", paid_at=now)
        order("1004", "cancelled", pay_requested_at=signed, cancelled_at=now)
        order("1005", "cancelled", pay_requested_at=signed, trade_no="T5", cancelled_at=now)
        order("1006", "cancelled", pay_requested_at=signed, trade_no="T6", cancelled_at=now, refunded_at=now)
        order("1007", "refunded", pay_requested_at=signed, trade_no="T7", paid_at=now, refunded_at=now)
        Order.objects.create(
            order_no="1008",
            user=user,
            status="paid",
            idempotency_key="1008",
            request_fingerprint="f",
            expires_at=now,
            paid_at=now,
        )  # 0.00, paid at once: never had a trade

        apps = migrate(AFTER)
        PaymentAttempt = apps.get_model("orders", "PaymentAttempt")
        Order = apps.get_model("orders", "Order")
        attempts = {a.out_trade_no: a for a in PaymentAttempt.objects.select_related("order").order_by("out_trade_no")}
        assert {no: (a.status, a.provider_trade_no) for no, a in attempts.items()} == {
            "1002": ("open", ""),
            "1003": ("paid", "T3"),
            "1004": ("closed", ""),
            "1005": ("refund_required", "T5"),
            "1006": ("refunded", "T6"),
            "1007": ("paid", "T7"),
        }
        for no, attempt in attempts.items():
            assert attempt.order.order_no == no
            assert (attempt.provider, attempt.channel, attempt.amount) == ("alipay", "page", Decimal("99.00"))
            assert attempt.created_at == signed
        assert attempts["1003"].paid_at == now and attempts["1006"].refunded_at == now
        # The late money's refund belongs to the attempt now; an operator's refund stays the order's.
        assert Order.objects.get(order_no="1006").refunded_at is None
        assert Order.objects.get(order_no="1007").refunded_at == now
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
