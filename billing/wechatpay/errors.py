"""The one error the WeChat Pay client raises: a call that failed, or an answer or notify that
cannot be trusted. Its `reason` says which, in a word the notify endpoint can record; `code` is
WeChat Pay's own error code, set only when a verified answer carried one."""

from enum import StrEnum


class Reason(StrEnum):
    UNREACHABLE = "unreachable"  # no answer: connection refused, timeout, TLS
    UNSIGNED = "unsigned"  # an answer or notify without WeChat Pay's signature headers
    BAD_SIGNATURE = "bad_signature"
    WRONG_SERIAL = "wrong_serial"  # signed with a key other than the configured public key id
    STALE_TIMESTAMP = "stale_timestamp"  # more than 5 minutes away from our clock
    UNDECRYPTABLE = "undecryptable"  # the notify's resource does not open with our APIv3 key
    NOT_OURS = "not_ours"  # another mchid / appid, or about another trade than the one asked for
    MALFORMED = "malformed"  # verified, but not the shape WeChat Pay documents
    REFUSED = "refused"  # a verified answer with one of WeChat Pay's error codes
    MISCONFIGURED = "misconfigured"  # a key, id or setting that cannot work


class WechatPayError(Exception):
    def __init__(
        self,
        reason: Reason,
        detail: str = "",
        *,
        code: str = "",
        http_status: int | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail
        self.code = code
        self.http_status = http_status
        # WeChat Pay's Request-ID header, for their support desk; set even on unverified answers
        # because nothing is decided on it.
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.code:
            parts.append(f"code={self.code}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)
