"""Free text that callers send (names, emails as typed): printable characters only.

PostgreSQL refuses NUL in text, so a NUL that got as far as a query was a 500 there
while SQLite stored it; control characters have no place in a name either. Refused
at the edge, it is the same 400 on every database.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"

PlainText = Annotated[StrictStr, Field(pattern=PRINTABLE)]
# Text a person writes (a review): line breaks and tabs are fine, NUL is not.
ProseText = Annotated[StrictStr, Field(pattern=NO_NUL)]
