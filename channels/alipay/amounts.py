"""Alipay amounts: yuan strings with two decimals ("88.88"), converted exactly.

Alipay sends and expects `total_amount` / `refund_amount` as decimal yuan strings
in [0.01, 100000000]. We hold int fen. Anything that is not a plain decimal with
at most two places (a sign, an exponent, spaces, a third decimal, leading zeros)
is refused rather than rounded: a payment amount is never guessed.
"""

from __future__ import annotations

import re

MIN_FEN = 1
MAX_FEN = 100_000_000_00  # 100,000,000.00 yuan
_YUAN = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")


class AmountFormatError(ValueError):
    pass


def yuan_to_fen(text: str) -> int:
    """ "88.88" -> 8888, "1" -> 100, "0.5" -> 50; AmountFormatError for anything else."""
    match = _YUAN.fullmatch(text)
    if match is None:
        raise AmountFormatError(f"not a yuan amount: {text!r}")
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    fen = int(whole) * 100 + int(fraction)
    if not MIN_FEN <= fen <= MAX_FEN:
        raise AmountFormatError(f"yuan amount out of range: {text!r}")
    return fen


def fen_to_yuan(fen: int) -> str:
    """8888 -> "88.88", 5 -> "0.05"; refuses non-int and out-of-range amounts."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, got {type(fen).__name__}")
    if not MIN_FEN <= fen <= MAX_FEN:
        raise AmountFormatError(f"amount out of Alipay's range: {fen} fen")
    return f"{fen // 100}.{fen % 100:02d}"
