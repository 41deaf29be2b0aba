"""Moves each order's Alipay state (trade_no, pay_requested_at, and for a cancelled order the
refund of money that arrived late) into a payment attempt. An order whose pay URL was never
signed has no attempt: no trade can exist for it. The attempt keeps out_trade_no = order_no, so
Alipay's existing trades, notifies and refunds still match."""

from django.db import migrations


def attempt_status(order) -> str:
    if order.status == "pending":
        return "open"
    if order.status in ("paid", "refunded"):
        return "paid"
    # Cancelled: money that arrived anyway was (or is still to be) refunded.
    if not order.trade_no:
        return "closed"
    return "refunded" if order.refunded_at else "refund_required"


def forwards(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    PaymentAttempt = apps.get_model("orders", "PaymentAttempt")
    orders = Order.objects.filter(pay_amount__gt=0).exclude(pay_requested_at__isnull=True, trade_no="")
    attempts = []
    for order in orders.iterator(chunk_size=2000):
        status = attempt_status(order)
        attempts.append(
            PaymentAttempt(
                order=order,
                provider="alipay",
                channel="page",
                out_trade_no=order.order_no,
                amount=order.pay_amount,
                status=status,
                provider_trade_no=order.trade_no,
                paid_at=order.paid_at if status == "paid" else None,
                closed_at=order.cancelled_at if status == "closed" else None,
                refunded_at=order.refunded_at if status == "refunded" else None,
            )
        )
        if len(attempts) >= 2000:
            PaymentAttempt.objects.bulk_create(attempts)
            attempts = []
    PaymentAttempt.objects.bulk_create(attempts)
    # created_at is auto_now_add: give each attempt the time its pay URL was first signed.
    schema_editor.execute(
        "UPDATE orders_paymentattempt attempt SET created_at = COALESCE(o.pay_requested_at, o.created_at) "
        "FROM orders_order o WHERE o.id = attempt.order_id"
    )
    # A cancelled order's refunded_at meant "the late money went back": that is the attempt's now.
    Order.objects.filter(status="cancelled").update(refunded_at=None)


def backwards(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    PaymentAttempt = apps.get_model("orders", "PaymentAttempt")
    for attempt in PaymentAttempt.objects.filter(provider="alipay").select_related("order").iterator():
        order = attempt.order
        if attempt.out_trade_no != order.order_no:
            continue
        order.pay_requested_at = attempt.created_at
        order.trade_no = attempt.provider_trade_no
        if attempt.status == "refunded":
            order.refunded_at = attempt.refunded_at
        order.save(update_fields=["pay_requested_at", "trade_no", "refunded_at"])
    PaymentAttempt.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_payment_attempt")]

    operations = [migrations.RunPython(forwards, backwards)]
