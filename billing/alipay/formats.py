"""How Alipay writes amounts, times and biz_content."""

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from core.money import CENT

BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
AMOUNT_PATTERN = re.compile(r"^(0|[1-9]\d*)(\.\d{1,2})?$")


def format_amount(amount: Decimal) -> str:
    """Yuan with exactly two decimals. Refuses sub-cent amounts instead of rounding them: a
    rounded price would be a different price from the one the order recorded."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"Amount must be a finite Decimal, got {amount!r}")
    if amount != amount.quantize(CENT):
        raise ValueError(f"Amount has more than two decimals: {amount}")
    if amount < 0:
        raise ValueError(f"Amount is negative: {amount}")
    return f"{amount.quantize(CENT):f}"


def parse_amount(text: Any) -> Decimal:
    """An amount as Alipay sends it ("199.00"). Raises ValueError on anything else."""
    if not isinstance(text, str) or not AMOUNT_PATTERN.match(text):
        raise ValueError(f"Not an Alipay amount: {text!r}")
    try:
        return Decimal(text).quantize(CENT)
    except InvalidOperation as exc:
        raise ValueError(f"Not an Alipay amount: {text!r}") from exc


def beijing_time(moment: datetime) -> str:
    """Alipay reads every time as Beijing time with no zone marker."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("Refusing a naive datetime: its zone would be a guess.")
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing_time(text: str) -> datetime:
    """An aware datetime from Alipay's `yyyy-MM-dd HH:mm:ss` (Beijing time)."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)


def compact_json(value: Any) -> str:
    """biz_content as Alipay's SDKs write it; the exact text is what gets signed."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
