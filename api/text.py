"""Free text that callers send (names, SKUs, reasons, reviews) and others are shown.

Refused, the same 400 on every database:
- C0 controls and DEL (U+0000-U+001F, U+007F); prose keeps tab and line breaks.
  PostgreSQL refuses NUL in text, so a NUL that got as far as a query was a 500 there
  while SQLite stored it.
- C1 controls (U+0080-U+009F): invisible, and some terminals and logs act on them
  (U+009B is CSI, an escape sequence's start).
- Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069):
  they reorder what follows on screen, so a product name or SKU shown to a buyer or an
  operator can read otherwise than it is stored ("Trojan Source", CVE-2021-42574).
  The marks U+200E, U+200F and U+061C are allowed: they reorder no run, only place a
  neutral character, and names that mix Arabic or Hebrew with digits need them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

# Refused in every text, as regex class ranges (the Rust and Python engines and JSON
# Schema readers all know \uXXXX).
_C1_AND_BIDI = r"\u0080-\u009f\u202a-\u202e\u2066-\u2069"

PRINTABLE = rf"^[^\x00-\x1f\x7f{_C1_AND_BIDI}]*$"
# A person's prose (a review): tab, line feed and carriage return are fine.
PROSE = rf"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f{_C1_AND_BIDI}]*$"

PlainText = Annotated[StrictStr, Field(pattern=PRINTABLE)]
ProseText = Annotated[StrictStr, Field(pattern=PROSE)]
