"""WeChat Pay API v3 client: request signing, answer and notify verification (public-key mode),
notify decryption, and the Native / H5 calls we make.

Knows nothing of orders: it speaks in `out_trade_no`, `out_refund_no`, amounts and WeChat Pay's
own states. Everything it raises is a `WechatPayError`.
"""
