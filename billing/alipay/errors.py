"""Everything the Alipay client raises. Callers catch `AlipayError` for "Alipay said no or was
unreachable"; `AlipaySignatureError` is a subclass because an unverifiable answer is also a
failed call, but it deserves its own alert (a wrong key in the settings, or someone in between)."""


class AlipayError(Exception):
    """A gateway call failed: transport error, or an Alipay business code other than 10000."""

    def __init__(self, message: str, *, code: str = "", sub_code: str = "", sub_msg: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"code={self.code}")
        if self.sub_code:
            parts.append(f"sub_code={self.sub_code}")
        if self.sub_msg:
            parts.append(f"sub_msg={self.sub_msg}")
        return " ".join(parts)


class AlipaySignatureError(AlipayError):
    """A gateway response whose signature is missing or does not verify with Alipay's public key.
    Any `code`/`sub_code` it carries were read from the unverified body: for diagnosis only."""


class AlipayKeyError(ValueError):
    """A key that is not a usable RSA key of the expected kind (configuration error)."""
