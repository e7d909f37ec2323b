"""The platform keys one process trusts, and when it may download them again.

    public-key mode    one configured key under its PUB_KEY_ID_...; nothing is downloaded
    certificate mode   the certificates last downloaded, by serial, each within its
                       validity; replaced whole by the next download (a certificate
                       WeChat Pay no longer lists is no longer trusted)
    refresh            only for a serial we do not know, and at most once per
                       `refresh_seconds` (the first time always): a sender of made-up
                       serials cannot make us call WeChat Pay more often than that

Each process (the API verifying notifications, the worker verifying answers) holds
its own store in memory, filled on first need; a rotation reaches each one through
the first unknown serial it sees. Pure: the adapter does the download.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.wechatpay.certificates import PlatformKey


class PlatformKeys:
    """The keys to verify WeChat Pay's signatures with; see the module docstring."""

    def __init__(
        self,
        refresh_seconds: float,
        configured: PlatformKey | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh_seconds = refresh_seconds
        self._configured = configured
        self._monotonic = monotonic  # paces downloads; wall-clock `now` judges validity
        self._downloaded: dict[str, PlatformKey] = {}
        self._last_refresh: float | None = None

    @property
    def downloads(self) -> bool:
        """Certificate mode: keys come from /v3/certificates."""
        return self._configured is None

    def trusted(self, now: int) -> dict[str, rsa.RSAPublicKey]:
        keys = [self._configured] if self._configured else self._downloaded.values()
        return {key.serial: key.public_key for key in keys if key.valid_at(now)}

    def knows(self, serial: str, now: int) -> bool:
        return serial in self.trusted(now)

    def may_refresh(self, serial: str, now: int) -> bool:
        """Whether a download for `serial` is due; if so, it counts as made from now."""
        if not self.downloads or not serial or self.knows(serial, now):
            return False
        started = self._monotonic()
        if self._last_refresh is not None and started - self._last_refresh < self._refresh_seconds:
            return False
        self._last_refresh = started
        return True

    def replace(self, downloaded: dict[str, PlatformKey]) -> None:
        self._downloaded = dict(downloaded)
