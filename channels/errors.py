"""Errors a channel adapter raises.

ChannelError                      base; `retryable` says whether trying again may help
├── ChannelUnavailable            network failure, timeout or 5xx: retry (retryable)
├── ChannelRejected               the channel refused the request for good (not retryable)
│   └── PaymentNotFound           the channel has no payment for that order
├── PayoutNotFound                the bank has no payout with that payout_id (not retryable)
├── NotificationSignatureError    bad, missing, or stale signature on a notification
├── NotificationFormatError       a notification body we cannot read
└── NotificationMismatch          genuine, but not for our app / seller / order amount
"""

from __future__ import annotations


class ChannelError(Exception):
    retryable = False

    def __init__(self, message: str, *, code: str = "channel_error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ChannelUnavailable(ChannelError):
    retryable = True


class ChannelRejected(ChannelError):
    pass


class PaymentNotFound(ChannelRejected):
    pass


class PayoutNotFound(ChannelError):
    pass


class NotificationSignatureError(ChannelError):
    pass


class NotificationFormatError(ChannelError):
    pass


class NotificationMismatch(ChannelError):
    pass
