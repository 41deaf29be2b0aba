"""A stand-in for Alipay's gateway, served by this project when ALIPAY_DEV_GATEWAY is on.

It speaks the real protocol (RSA2 both ways, Alipay's parameter and JSON shapes, notifies and
synchronous returns) with its own generated key pairs, so the whole payment flow runs, and is
tested, without an Alipay sandbox account.
"""
