"""Helpers the bill formats share: amounts as decimal text, times in a zone."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo


def decimal_text(minor: int, places: int = 2) -> str:
    """Minor units (hundredths) as a decimal with `places` places: 3998 -> "39.98", -24 ->
    "-0.24"; places=5 -> "0.24000". Integer arithmetic only."""
    sign = "-" if minor < 0 else ""
    major, fraction = divmod(abs(minor), 100)
    return f"{sign}{major}.{fraction:02d}{'0' * (places - 2)}"


def local_time(unix: float, zone: tzinfo) -> str:
    """`yyyy-MM-dd HH:mm:ss` in `zone`, to the second."""
    return datetime.fromtimestamp(int(unix), zone).strftime("%Y-%m-%d %H:%M:%S")


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()
