"""Alipay open platform client: RSA2 signing and verification, and the gateway calls we make.

Knows nothing of orders: it speaks in `out_trade_no`, amounts and Alipay's own statuses.
"""
