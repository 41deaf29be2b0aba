"""How WeChat Pay API v3 writes amounts, times, numbers and JSON bodies."""

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.money import CENT

BEIJING = ZoneInfo("Asia/Shanghai")
# WeChat Pay's rules for merchant numbers: out_trade_no 6-32 of [0-9A-Za-z_-|*], out_refund_no
# 1-64 of the same plus `@`. Checked before a call, so a bad one fails here and not at WeChat.
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
DESCRIPTION_MAX_LENGTH = 127


def to_fen(amount: Decimal) -> int:
    """Yuan (Decimal) to integer fen, exactly. Refuses anything that is not a whole fen instead of
    rounding it: a rounded price is a different price from the one the order recorded."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"Amount must be a finite Decimal, got {amount!r}")
    fen = amount.scaleb(2)
    if fen != fen.to_integral_value():
        raise ValueError(f"Amount is not a whole fen: {amount}")
    if fen < 0:
        raise ValueError(f"Amount is negative: {amount}")
    return int(fen)


def to_yuan(fen: int) -> Decimal:
    """Integer fen, as WeChat Pay sends them, to yuan with two decimals."""
    if type(fen) is not int or fen < 0:
        raise ValueError(f"Not an amount in fen: {fen!r}")
    return Decimal(fen).scaleb(-2).quantize(CENT)


def rfc3339(moment: datetime) -> str:
    """`2026-01-02T03:34:05+08:00`: Beijing time, whole seconds. Truncating the fraction moves a
    deadline earlier, never later."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("Refusing a naive datetime: its zone would be a guess.")
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()


def parse_rfc3339(text: Any) -> datetime:
    """An aware datetime from WeChat Pay's RFC 3339 text. Raises ValueError on anything else."""
    if not isinstance(text, str):
        raise ValueError(f"Not an RFC 3339 time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"RFC 3339 time without an offset: {text!r}")
    return moment


def compact_json(value: Any) -> str:
    """A request body as sent and signed: compact, UTF-8 characters left as they are."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def check_out_trade_no(value: str) -> str:
    if not isinstance(value, str) or not OUT_TRADE_NO.fullmatch(value):
        raise ValueError(f"out_trade_no must be 6 to 32 of 0-9 A-Z a-z _ - | *, got {value!r}")
    return value


def check_out_refund_no(value: str) -> str:
    if not isinstance(value, str) or not OUT_REFUND_NO.fullmatch(value):
        raise ValueError(f"out_refund_no must be 1 to 64 of 0-9 A-Z a-z _ - | * @, got {value!r}")
    return value
