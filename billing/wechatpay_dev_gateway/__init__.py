"""A stand-in for WeChat Pay API v3, served by this project when WECHATPAY_DEV_GATEWAY is on.

It speaks the real protocol (WECHATPAY2-SHA256-RSA2048 both ways in public-key mode, WeChat Pay's
JSON shapes and HTTP statuses, AES-GCM encrypted notifies) with keys it generates itself, so the
Native and H5 flows run, and are tested, without a merchant account. Its pages at each code_url
and h5_url play the buyer's phone.
"""
