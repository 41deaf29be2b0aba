from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.money import ZERO


class CartItem(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cart_items")
    course = models.ForeignKey("core.Course", on_delete=models.CASCADE, related_name="+")
    selected = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="cart_item_unique_user_course")]

    def __str__(self) -> str:
        return f"{self.user}: {self.course}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"
        CANCELLED = "cancelled"
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"

    class PayType(models.TextChoices):
        """The buyer's first choice of provider at checkout; payment attempts may use another."""

        ALIPAY = "alipay"
        WECHAT = "wechat"

    order_no = models.CharField(max_length=32, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    pay_type = models.CharField(max_length=10, choices=PayType.choices, default=PayType.ALIPAY)
    subtotal = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    coupon_discount = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    points_used = models.BigIntegerField(default=0)
    points_discount = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    pay_amount = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    user_coupon = models.ForeignKey(
        "billing.UserCoupon", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=20, blank=True)
    # When the last of its lines was refunded (the order became `refunded`).
    refunded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Settles concurrent duplicate submits: the loser blocks on this index, then replays.
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="order_unique_user_idempotency_key"),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0, coupon_discount__gte=0, points_discount__gte=0, pay_amount__gte=0)
                & Q(points_used__gte=0),
                name="order_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(pay_amount=F("subtotal") - F("coupon_discount") - F("points_discount")),
                name="order_pay_amount_adds_up",
            ),
            models.CheckConstraint(
                condition=~(Q(paid_at__isnull=False) & Q(cancelled_at__isnull=False)),
                name="order_never_paid_and_cancelled",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="order_status_expires_idx"),
            models.Index(fields=["user", "-created_at"], name="order_user_created_idx"),
            models.Index(fields=["user", "status"], name="order_user_status_idx"),
        ]

    def __str__(self) -> str:
        return self.order_no


class OrderLine(models.Model):
    """A course as it was bought: name, picture and price are copied from the catalogue."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    course = models.ForeignKey("core.Course", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    picture_url = models.CharField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["order", "course"], name="order_line_unique_course")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.name}"


class PaymentAttempt(models.Model):
    """One try at paying an order through one provider and channel: the provider's trade, seen
    from our side (DESIGN.md "Domain"). An order may have several (the buyer switches from Alipay
    to WeChat Pay); the first confirmed payment of the exact amount pays the order, every other
    open attempt is then closed, and money that arrives on another attempt anyway (or after the
    order was cancelled) is refunded once: its refund request id is fixed per attempt."""

    class Provider(models.TextChoices):
        ALIPAY = "alipay"
        WECHAT = "wechat"

    class Channel(models.TextChoices):
        PAGE = "page", "Alipay page pay (computer)"
        WAP = "wap", "Alipay wap pay (phone browser)"
        NATIVE = "native", "WeChat Pay Native (QR code)"
        H5 = "h5", "WeChat Pay H5 (phone browser)"

    class Status(models.TextChoices):
        OPEN = "open"
        PAID = "paid"
        CLOSED = "closed"
        REFUND_REQUIRED = "refund_required"
        REFUNDED = "refunded"

    CHANNELS = {
        Provider.ALIPAY: (Channel.PAGE, Channel.WAP),
        Provider.WECHAT: (Channel.NATIVE, Channel.H5),
    }

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payment_attempts")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    out_trade_no = models.CharField(max_length=32, unique=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    provider_trade_no = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # WeChat Pay Native's QR code link and when WeChat Pay gave it: asked for again it gives the
    # same link for the same trade, so it is kept and shown again (orders/services/payment.py).
    code_url = models.CharField(max_length=512, blank=True)
    code_url_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # However notifies and queries interleave, one attempt at most is what paid the order.
            models.UniqueConstraint(
                fields=["order"], condition=Q(status="paid"), name="payment_attempt_one_paid_per_order"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_attempt_amount_positive"),
            models.CheckConstraint(
                condition=Q(provider="alipay", channel__in=["page", "wap"])
                | Q(provider="wechat", channel__in=["native", "h5"]),
                name="payment_attempt_channel_of_provider",
            ),
        ]
        indexes = [models.Index(fields=["order", "status"], name="payment_attempt_order_idx")]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.provider}/{self.channel} {self.status}"

    @property
    def refund_request_no(self) -> str:
        """The provider refunds one request id at most once, so a retried refund never pays twice.
        (The suffix predates attempts: a migrated order's refund keeps the id it may already have used.)"""
        return f"{self.out_trade_no}-cancelled"


class Refund(models.Model):
    """Money going back to the buyer for some lines of a paid order, through the payment attempt
    that paid it (DESIGN.md "Domain", "Order states"; orders/services/refunds.py).

    `request_no` is fixed when the refund is asked for and is the provider's refund request id
    (Alipay `out_request_no`, WeChat Pay `out_refund_no`): both refund one id at most once, so a
    refund sent again after a timeout, a crash or a retried message moves money once.

    The refunds of an order that are not rejected never add up to more than its `pay_amount`: a
    trigger (`refund_total_within_pay_amount`, migration 0007) adds them up under the order's row
    lock after every change and refuses the change otherwise. A line is in at most one refund that
    is not rejected (`refund_line_one_live_refund_per_line`)."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested by the buyer"
        APPROVED = "approved", "Approved, waiting to be sent"
        REJECTED = "rejected"
        PROCESSING = "processing", "Sent to the provider"
        SUCCEEDED = "succeeded"
        FAILED = "failed", "Refused by the provider"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    # The attempt that paid the order; none for an order that cost 0.00.
    attempt = models.ForeignKey(PaymentAttempt, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    request_no = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    reason = models.CharField(max_length=200, blank=True)
    # The buyer's Idempotency-Key, when the request carried one: the same request sent again (an
    # answer lost on a phone's network) is answered with this refund instead of a 409.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Who approved or rejected it; none when it was approved automatically (REFUND_AUTO_APPROVE).
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A rejection's reason, or how the refund was approved.
    decision_note = models.CharField(max_length=200, blank=True)
    provider_refund_id = models.CharField(max_length=64, blank=True)
    # What the provider said when it refused (shown in the admin).
    failure_message = models.CharField(max_length=500, blank=True)
    # Set when it succeeds: points spent on its lines given back, points earned taken back, and
    # earned points the balance could not give back (never taken below zero).
    points_returned = models.BigIntegerField(default=0)
    points_taken_back = models.BigIntegerField(default=0)
    points_not_taken_back = models.BigIntegerField(default=0)
    # How many times it was sent to the provider (always with the same request_no).
    send_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0, points_returned__gte=0, points_taken_back__gte=0)
                & Q(points_not_taken_back__gte=0),
                name="refund_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(status="requested") | Q(decided_at__isnull=False), name="refund_decided_when_past_requested"
            ),
            models.UniqueConstraint(
                fields=["order", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="refund_unique_order_idempotency_key",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="refund_status_updated_idx")]

    def __str__(self) -> str:
        return f"{self.request_no} {self.amount} {self.status}"


class RefundLine(models.Model):
    """An order line a refund covers, with its refundable amount and its share of the points spent
    (orders/pricing.py `split_order`), fixed when the refund is asked for."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refund_lines")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    points = models.BigIntegerField(default=0)
    # False once its refund is rejected: the line can then be asked for again.
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # However requests and approvals interleave, a line is refunded once.
            models.UniqueConstraint(
                fields=["order_line"], condition=Q(active=True), name="refund_line_one_live_refund_per_line"
            ),
            models.UniqueConstraint(fields=["refund", "order_line"], name="refund_line_unique_per_refund"),
            models.CheckConstraint(condition=Q(amount__gte=0, points__gte=0), name="refund_line_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.refund_id}: line {self.order_line_id} {self.amount}"
