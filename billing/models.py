from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Coupon(models.Model):
    class Kind(models.TextChoices):
        FIXED = "fixed", "Fixed amount off (满X减Y)"
        PERCENT = "percent", "Percent off (折)"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    threshold = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    amount_off = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    total_quantity = models.PositiveIntegerField()
    issued_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # The last line of defence against overselling: claim_coupon's conditional UPDATE
            # is the first.
            models.CheckConstraint(condition=Q(issued_count__lte=F("total_quantity")), name="coupon_not_oversold"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="coupon_threshold_not_negative"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="coupon_window_not_empty"),
            models.CheckConstraint(
                condition=(Q(kind="fixed", amount_off__gt=0, percent_off__isnull=True))
                | Q(kind="percent", percent_off__gt=0, percent_off__lte=100, amount_off__isnull=True),
                name="coupon_terms_match_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class UserCoupon(models.Model):
    """A claimed coupon. Its terms are copied at claim time so later edits of the coupon
    never change what the user was promised."""

    class Status(models.TextChoices):
        UNUSED = "unused"
        LOCKED = "locked"
        USED = "used"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coupons")
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="claims")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Coupon.Kind.choices)
    threshold = models.DecimalField(max_digits=10, decimal_places=2)
    amount_off = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNUSED)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-claimed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "coupon"], name="user_coupon_one_claim_per_user"),
            models.CheckConstraint(
                condition=Q(status="unused", order__isnull=True)
                | Q(status__in=["locked", "used"], order__isnull=False),
                name="user_coupon_order_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class PointsAccount(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="points_account")
    balance = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="points_balance_not_negative")]

    def __str__(self) -> str:
        return f"{self.user}: {self.balance}"


class PointsEntry(models.Model):
    """Append-only ledger: the account balance always equals the sum of its entries."""

    class Reason(models.TextChoices):
        GRANT = "grant", "Granted"
        ORDER_DEBIT = "order_debit", "Spent on an order"
        ORDER_REFUND = "order_refund", "Returned from a cancelled order"
        ORDER_EARNED = "order_earned", "Earned by a paid order"
        EARNED_REVERSAL = "earned_reversal", "Earned points taken back on refund"
        REFUND_RETURN = "refund_return", "Spent points returned by a refund"

    account = models.ForeignKey(PointsAccount, on_delete=models.CASCADE, related_name="entries")
    delta = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(delta=0), name="points_entry_delta_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="points_entry_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} -> {self.balance_after} ({self.reason})"


class PaymentNotification(models.Model):
    """Every provider notify we received, with what we made of it: Alipay's form fields as sent,
    WeChat Pay's decrypted fields (or, when it did not verify, a short summary of the request)."""

    class Provider(models.TextChoices):
        ALIPAY = "alipay"
        WECHAT = "wechat"

    class Verdict(models.TextChoices):
        PAID = "paid", "Marked the order paid"
        DUPLICATE = "duplicate", "Already settled"
        REFUND_REQUIRED = "refund_required", "Paid after cancellation: refund"
        IGNORED = "ignored", "Valid but not a payment"
        REJECTED = "rejected", "Rejected"

    received_at = models.DateTimeField(auto_now_add=True)
    provider = models.CharField(max_length=10, choices=Provider.choices, default=Provider.ALIPAY)
    notify_id = models.CharField(max_length=128, blank=True)
    out_trade_no = models.CharField(max_length=64, blank=True)
    trade_no = models.CharField(max_length=64, blank=True)
    trade_status = models.CharField(max_length=32, blank=True)
    total_amount = models.CharField(max_length=32, blank=True)
    raw = models.JSONField()
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    reason = models.CharField(max_length=200, blank=True)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["out_trade_no"])]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.trade_status} -> {self.verdict}"


class DevGatewayTrade(models.Model):
    """A trade held by the built-in Alipay stand-in (billing.dev_gateway), playing the part of
    Alipay's own records. Never used when a real gateway is configured."""

    class Status(models.TextChoices):
        WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
        TRADE_SUCCESS = "TRADE_SUCCESS"
        TRADE_CLOSED = "TRADE_CLOSED"

    out_trade_no = models.CharField(max_length=64, unique=True)
    trade_no = models.CharField(max_length=64, blank=True)
    total_amount = models.DecimalField(max_digits=10, decimal_places=2)
    subject = models.CharField(max_length=256)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.WAIT_BUYER_PAY)
    notify_url = models.CharField(max_length=500, blank=True)
    return_url = models.CharField(max_length=500, blank=True)
    # FAST_INSTANT_TRADE_PAY (page pay, a computer) or QUICK_WAP_WAY (wap pay, a phone's browser).
    product_code = models.CharField(max_length=32, default="FAST_INSTANT_TRADE_PAY")
    # Wap pay: where the cashier's "back" sends a buyer who leaves without paying.
    quit_url = models.CharField(max_length=500, blank=True)
    time_expire = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    # Every out_request_no already refunded: Alipay refunds each at most once.
    refund_request_nos = models.JSONField(default=list, blank=True)
    # What each refund request refunded ("R1": "10.00"), for alipay.trade.fastpay.refund.query.
    refund_amounts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.total_amount} {self.status}"


class WechatPayDevTrade(models.Model):
    """A trade held by the built-in WeChat Pay stand-in (billing.wechatpay_dev_gateway), playing
    the part of WeChat Pay's own records. Never used when a real merchant is configured."""

    class TradeType(models.TextChoices):
        NATIVE = "NATIVE"
        H5 = "MWEB"  # WeChat Pay's trade_type for H5

    class State(models.TextChoices):
        NOTPAY = "NOTPAY"
        SUCCESS = "SUCCESS"
        CLOSED = "CLOSED"
        REFUND = "REFUND"

    out_trade_no = models.CharField(max_length=32, unique=True)
    appid = models.CharField(max_length=32)
    mchid = models.CharField(max_length=32)
    trade_type = models.CharField(max_length=10, choices=TradeType.choices)
    description = models.CharField(max_length=127)
    total = models.PositiveIntegerField(help_text="fen")
    notify_url = models.CharField(max_length=256)
    time_expire = models.DateTimeField(null=True, blank=True)
    payer_client_ip = models.CharField(max_length=45, blank=True)
    # The code_url and h5_url name the trade by this, not by the merchant's number.
    prepay_id = models.CharField(max_length=64, unique=True)
    transaction_id = models.CharField(max_length=32, blank=True)
    trade_state = models.CharField(max_length=10, choices=State.choices, default=State.NOTPAY)
    refunded = models.PositiveIntegerField(default=0, help_text="fen")
    created_at = models.DateTimeField(auto_now_add=True)
    success_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(refunded__lte=F("total")), name="wechatpay_dev_trade_not_over_refunded"),
        ]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.total} fen {self.trade_state}"


class WechatPayDevRefund(models.Model):
    """A refund held by the WeChat Pay stand-in; WeChat Pay refunds each out_refund_no once."""

    class Status(models.TextChoices):
        PROCESSING = "PROCESSING"
        SUCCESS = "SUCCESS"
        CLOSED = "CLOSED"
        ABNORMAL = "ABNORMAL"

    trade = models.ForeignKey(WechatPayDevTrade, on_delete=models.CASCADE, related_name="refunds")
    out_refund_no = models.CharField(max_length=64, unique=True)
    refund_id = models.CharField(max_length=32, unique=True)
    refund = models.PositiveIntegerField(help_text="fen")
    total = models.PositiveIntegerField(help_text="fen")
    reason = models.CharField(max_length=80, blank=True)
    notify_url = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROCESSING)
    created_at = models.DateTimeField(auto_now_add=True)
    success_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.out_refund_no} {self.refund} fen {self.status}"
