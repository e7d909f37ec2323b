"""What the channels' bill clients share: streaming a download to disk, reading amounts.

    download_to(...)   streams one GET into a file beside its final name, hashing as it
                       goes, and moves it into place only when whole: a reader never sees
                       half a bill. Transport failures and 408/429/5xx are
                       ChannelUnavailable (retry may help), other statuses ChannelRejected.
    minor_units(...)   a decimal amount in major units ("39.98", "-0.24000") as exact
                       minor units; anything else is BillCorrupt
    day_in_name(...)   the bill day our clients write into every file name

Amounts are converted with Decimal, exactly: a bill that states a fraction of a minor
unit where none can be is corrupt, not rounded, except where a channel documents
more places than it charges (`rounded=True`, WeChat Pay's five-place fees; see there).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx

from channels.errors import ChannelUnavailable
from channels.http import raise_for_status
from domain.bills import BillCorrupt
from domain.money import round_half_up

_CHUNK = 64 * 1024
_DAY_IN_NAME = re.compile(r"_(\d{4}-\d{2}-\d{2})[._]")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha1: str  # hex: WeChat Pay's hash_value is SHA1 over the bytes as downloaded


async def download_to(
    client: httpx.AsyncClient,
    what: str,
    url: str,
    target: Path,
    headers: Mapping[str, str] | None = None,
) -> Downloaded:
    """GET `url` into `target`, streaming; the file appears only once whole."""
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha1(usedforsecurity=False)
    size = 0
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code >= 400:
                raise_for_status(what, response.status_code, f"http_{response.status_code}")
            with partial.open("wb") as file:
                async for chunk in response.aiter_bytes(_CHUNK):
                    file.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, httpx.TimeoutException):
            raise ChannelUnavailable(f"{what}: timed out", code="timeout") from None
        if isinstance(exc, httpx.TransportError):  # its text could echo the request
            raise ChannelUnavailable(f"{what}: {type(exc).__name__}", code="unreachable") from None
        raise
    os.replace(partial, target)
    return Downloaded(target, size, digest.hexdigest())


def minor_units(text: str, what: str, *, rounded: bool = False) -> int:
    """`"39.98"` -> 3998 (hundredths), exactly. `rounded`: a finer fraction is rounded half
    up (`domain.money.round_half_up`) instead of refused."""
    try:
        value = Decimal(text.strip()) * 100
    except InvalidOperation:
        raise BillCorrupt(f"{what}: {text!r} is not an amount") from None
    if not value.is_finite():
        raise BillCorrupt(f"{what}: {text!r} is not an amount")
    if value != value.to_integral_value():
        if not rounded:
            raise BillCorrupt(f"{what}: {text!r} is not a whole number of minor units")
        return round_half_up(value)
    return int(value)


def integer(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise BillCorrupt(f"{what}: {text!r} is not an integer") from None


def bill_file_name(channel: str, kind: str, day: date, suffix: str) -> str:
    """`alipay_trade_2026-11-30.csv.zip`: what our clients name a day's file."""
    return f"{channel}_{kind}_{day.isoformat()}{suffix}"


def day_in_name(path: Path) -> date:
    """The day a file named by `bill_file_name` is for."""
    match = _DAY_IN_NAME.search(path.name)
    if match is None:
        raise BillCorrupt(f"{path.name}: not a bill file of ours (no day in its name)")
    return date.fromisoformat(match[1])
