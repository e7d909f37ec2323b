"""The ECB's euro reference rates: parse the daily XML safely, serve it as a `RateSource`.

The file (eurofxref-daily.xml) lists, for one business day, how many units of each
currency one euro buys:

    <gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
                     xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
      <Cube><Cube time="2024-04-15"><Cube currency="USD" rate="1.0656"/>...</Cube></Cube>
    </gesmes:Envelope>

It comes from outside, so it is parsed with defusedxml and `forbid_dtd=True`: the format
has no DTD, so any DTD (and with it every entity trick: billion laughs, quadratic
blow-up, external entities) is refused before anything is expanded. A file larger than
`MAX_DOCUMENT_BYTES` is refused unread. Rates must be plain positive decimals
("1.0656"): no exponent, sign, NaN or whitespace, and each currency once.

The ECB publishes around 16:00 CET; a day's table is taken to describe instants from
15:00 UTC that day (16:00 CET, later than the real publication in summer time, so never
a look-ahead) until `max_age` later. Weekends and TARGET holidays publish nothing, so the
default age covers Easter's Thursday-to-Tuesday gap. Cross rates go through EUR at
`domain.fx.rates.CROSS_RATE_DIGITS` significant digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from importlib import resources
from types import MappingProxyType
from typing import Final
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from domain.fx.errors import RateFileInvalid, RateMissing, RateStale
from domain.fx.rates import Rate, cross_rate

GESMES_NS: Final = "http://www.gesmes.org/xml/2002-08-01"
EUROFXREF_NS: Final = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
MAX_DOCUMENT_BYTES: Final = 64 * 1024
"""The real daily file is under 2 KiB; anything this big is not one."""
PUBLISHED_AT_UTC: Final = time(15, 0)
DEFAULT_MAX_AGE: Final = timedelta(days=5)
SAMPLE_FILE: Final = "eurofxref-daily-sample.xml"

_CUBE: Final = f"{{{EUROFXREF_NS}}}Cube"
_ENVELOPE: Final = f"{{{GESMES_NS}}}Envelope"
_RATE_TEXT: Final = re.compile(r"[0-9]{1,9}(\.[0-9]{1,12})?")
_CURRENCY_TEXT: Final = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ReferenceRates:
    """One day's table: units of each currency per euro (EUR itself is 1)."""

    published_on: date
    per_eur: Mapping[str, Decimal]

    @property
    def as_of(self) -> datetime:
        """The first instant the table describes (16:00 CET on its day)."""
        return datetime.combine(self.published_on, PUBLISHED_AT_UTC, UTC)


def parse_ecb_daily(document: bytes) -> ReferenceRates:
    """The table in an ECB daily file; `RateFileInvalid` for anything else."""
    if len(document) > MAX_DOCUMENT_BYTES:
        raise _invalid(f"the file has {len(document)} bytes, more than {MAX_DOCUMENT_BYTES}")
    try:
        root = SafeElementTree.fromstring(document, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise _invalid(f"the file declares a DTD or entities: {type(exc).__name__}") from None
    except ParseError as exc:
        raise _invalid(f"the file is not well-formed XML: {exc}") from None
    if root.tag != _ENVELOPE:
        raise _invalid(f"the root element is {root.tag!r}, not the gesmes Envelope")
    day = _the_one_day(root)
    return ReferenceRates(_published_on(day), _rates_of(day))


def render_ecb_daily(reference: ReferenceRates) -> bytes:
    """`reference` in the ECB's daily format (what the sandbox can serve as a feed)."""
    lines = [
        f'<Cube currency="{currency}" rate="{rate:f}"/>'
        for currency, rate in reference.per_eur.items()
        if currency != "EUR"
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<gesmes:Envelope xmlns:gesmes="{GESMES_NS}" xmlns="{EUROFXREF_NS}">\n'
        "<gesmes:subject>Reference rates</gesmes:subject>\n"
        "<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>\n"
        f'<Cube><Cube time="{reference.published_on.isoformat()}">\n'
        + "\n".join(lines)
        + "\n</Cube></Cube>\n</gesmes:Envelope>\n"
    ).encode()


def load_sample_reference() -> ReferenceRates:
    """The sample table shipped with paysaga (2024-04-15), for development and tests."""
    return parse_ecb_daily((resources.files("channels.rates") / "data" / SAMPLE_FILE).read_bytes())


class EcbRates:
    """A `RateSource` over one ECB daily table."""

    def __init__(self, reference: ReferenceRates, max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        self.reference = reference
        self.max_age = max_age
        self.source = f"ecb:{reference.published_on.isoformat()}"

    def rate(self, base: str, quote: str, at: datetime) -> Rate:
        if at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware, got {at!r}")
        as_of = self.reference.as_of
        if at < as_of:
            raise RateStale(
                "rate_not_yet_published",
                f"the {self.source} rates describe instants from {as_of.isoformat()}, "
                f"not {at.isoformat()}",
                "at",
            )
        if at - as_of > self.max_age:
            raise RateStale(
                "rate_stale",
                f"the {self.source} rates are older than {self.max_age} at {at.isoformat()}",
                "at",
            )
        for currency, param in ((base, "base"), (quote, "quote")):
            if currency not in self.reference.per_eur:
                raise RateMissing(
                    "rate_missing", f"{self.source} publishes no rate for {currency!r}", param
                )
        table = dict(self.reference.per_eur)
        return cross_rate(base, quote, table, source=self.source, as_of=as_of)


def _the_one_day(root: Element) -> Element:
    days = [cube for cube in root.iter(_CUBE) if "time" in cube.attrib]
    if len(days) != 1:
        raise _invalid(f"a daily file has one dated Cube, this one has {len(days)}")
    return days[0]


def _published_on(day: Element) -> date:
    text = day.attrib["time"]
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _invalid(f"the Cube time {text!r} is not a YYYY-MM-DD date") from None


def _rates_of(day: Element) -> Mapping[str, Decimal]:
    per_eur: dict[str, Decimal] = {"EUR": Decimal(1)}
    for cube in day:
        currency = cube.attrib.get("currency", "")
        rate_text = cube.attrib.get("rate", "")
        if cube.tag != _CUBE or not _CURRENCY_TEXT.fullmatch(currency):
            raise _invalid(f"an entry {cube.tag!r} has no valid currency: {currency!r}")
        if currency in per_eur:
            raise _invalid(f"{currency} is listed twice (or is the base, EUR)")
        if not _RATE_TEXT.fullmatch(rate_text) or Decimal(rate_text) == 0:
            raise _invalid(f"the rate of {currency} is not a positive decimal: {rate_text!r}")
        per_eur[currency] = Decimal(rate_text)
    if len(per_eur) == 1:
        raise _invalid("the file lists no rates")
    return MappingProxyType(per_eur)


def _invalid(message: str) -> RateFileInvalid:
    return RateFileInvalid("rate_file_invalid", message, "document")
