"""The ECB daily file: the shipped sample, cross rates through EUR, and hostile files."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.rates.ecb import (
    MAX_DOCUMENT_BYTES,
    EcbRates,
    ReferenceRates,
    load_sample_reference,
    parse_ecb_daily,
    render_ecb_daily,
)
from domain.fx.errors import RateFileInvalid, RateMissing, RateStale

NEXT_MORNING = datetime(2024, 4, 16, 9, tzinfo=UTC)
ENVELOPE = (
    '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"'
    ' xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">{}</gesmes:Envelope>'
)


def daily(cubes: str, day: str = "2024-04-15") -> bytes:
    return ENVELOPE.format(f"<Cube><Cube time='{day}'>{cubes}</Cube></Cube>").encode()


def test_the_sample_is_the_ecb_table_of_15_april_2024() -> None:
    sample = load_sample_reference()
    assert sample.published_on == date(2024, 4, 15)
    assert sample.per_eur["EUR"] == 1
    assert sample.per_eur["USD"] == Decimal("1.0656")
    assert sample.per_eur["CNY"] == Decimal("7.7134")
    assert sample.per_eur["JPY"] == Decimal("164.05")
    assert len(sample.per_eur) == 31  # the euro and the 30 currencies the ECB quotes
    assert parse_ecb_daily(render_ecb_daily(sample)) == sample


rate_tables = st.dictionaries(
    st.text("ABCDFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),  # no E: never EUR
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4),
    min_size=1,
    max_size=40,
).filter(lambda table: all(rate > 0 for rate in table.values()))


@given(st.dates(min_value=date(1999, 1, 4)), rate_tables)
def test_any_table_round_trips_through_the_ecb_format(published_on, table):
    reference = ReferenceRates(published_on, MappingProxyType({"EUR": Decimal(1)} | table))
    assert parse_ecb_daily(render_ecb_daily(reference)) == reference


def test_cross_rates_go_through_the_euro_at_twelve_digits() -> None:
    ecb = EcbRates(load_sample_reference())
    rate = ecb.rate("CNY", "HKD", NEXT_MORNING)
    assert rate.value == Decimal("1.08148157751")  # 8.3419 / 7.7134 = 1.0814815775144...
    assert rate.source == "ecb:2024-04-15"
    assert rate.as_of == datetime(2024, 4, 15, 15, tzinfo=UTC)
    assert ecb.rate("EUR", "USD", NEXT_MORNING).value == Decimal("1.0656")
    assert ecb.rate("USD", "EUR", NEXT_MORNING).value == Decimal("0.938438438438")
    assert ecb.rate("JPY", "JPY", NEXT_MORNING).value == 1


def test_a_stale_or_not_yet_published_table_or_a_missing_currency_is_refused() -> None:
    ecb = EcbRates(load_sample_reference(), max_age=timedelta(days=5))
    # Friday's rates serve the weekend; a week later they are stale.
    assert ecb.rate("USD", "CNY", datetime(2024, 4, 20, 15, tzinfo=UTC)).value > 0
    with pytest.raises(RateStale) as stale:
        ecb.rate("USD", "CNY", datetime(2024, 4, 22, 9, tzinfo=UTC))
    assert stale.value.code == "rate_stale"
    with pytest.raises(RateStale) as early:
        ecb.rate("USD", "CNY", datetime(2024, 4, 15, 12, tzinfo=UTC))
    assert early.value.code == "rate_not_yet_published"
    with pytest.raises(RateMissing) as missing:
        ecb.rate("KWD", "USD", NEXT_MORNING)  # the ECB does not quote the dinar
    assert (missing.value.code, missing.value.param) == ("rate_missing", "base")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<gesmes:subject>&lol9;</gesmes:subject>
<Cube><Cube time="2024-04-15"><Cube currency="USD" rate="1.0656"/></Cube></Cube>
</gesmes:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE e [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<gesmes:subject>&secret;</gesmes:subject>
<Cube><Cube time="2024-04-15"><Cube currency="USD" rate="1.0656"/></Cube></Cube>
</gesmes:Envelope>"""


def test_a_billion_laughs_file_is_refused_before_anything_expands() -> None:
    started = time.perf_counter()
    with pytest.raises(RateFileInvalid) as refused:
        parse_ecb_daily(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1.0
    assert refused.value.code == "rate_file_invalid"
    assert "DTD" in refused.value.message


def test_an_external_entity_is_never_resolved() -> None:
    with pytest.raises(RateFileInvalid) as refused:
        parse_ecb_daily(EXTERNAL_ENTITY)
    assert "root:" not in refused.value.message


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (b"", "well-formed"),
        (b"<html><body>maintenance</body></html>", "root element"),
        (b"<gesmes:Envelope", "well-formed"),
        (ENVELOPE.format("<Cube></Cube>").encode(), "one dated Cube"),
        (
            ENVELOPE.format(
                "<Cube><Cube time='2024-04-15'></Cube><Cube time='2024-04-12'></Cube></Cube>"
            ).encode(),
            "one dated Cube",
        ),
        (daily(""), "no rates"),
        (daily("<Cube currency='USD' rate='1.0656'/>", day="15/04/2024"), "YYYY-MM-DD"),
        (daily("<Cube currency='USD' rate='1.0656'/>", day="2024-4-15"), "YYYY-MM-DD"),
        (daily("<Cube currency='usd' rate='1.0656'/>"), "currency"),
        (daily("<Cube rate='1.0656'/>"), "currency"),
        (daily("<Cube currency='USD' rate='1.0656'/><Cube currency='USD' rate='1.07'/>"), "twice"),
        (daily("<Cube currency='EUR' rate='1'/>"), "twice"),
        (daily("<Cube currency='USD'/>"), "positive decimal"),
        (daily("<Cube currency='USD' rate='NaN'/>"), "positive decimal"),
        (daily("<Cube currency='USD' rate='-1.0656'/>"), "positive decimal"),
        (daily("<Cube currency='USD' rate='1.0656e0'/>"), "positive decimal"),
        (daily("<Cube currency='USD' rate=' 1.0656'/>"), "positive decimal"),
        (daily("<Cube currency='USD' rate='0.0000'/>"), "positive decimal"),
        (daily("<Rate currency='USD' rate='1.0656'/>"), "currency"),
        (b" " * (MAX_DOCUMENT_BYTES + 1), "bytes"),
    ],
)
def test_a_malformed_file_is_refused_with_what_is_wrong(document, says):
    with pytest.raises(RateFileInvalid) as refused:
        parse_ecb_daily(document)
    assert says in refused.value.message


@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_parsed_or_refused_never_crash(document):
    with contextlib.suppress(RateFileInvalid):
        parse_ecb_daily(document)


@given(
    st.sampled_from(["USD", "usd", "US", "USDX", ""]), st.text("0123456789.-+eE nN ", max_size=12)
)
def test_any_currency_or_rate_text_is_either_a_valid_entry_or_refused(currency, rate):
    entry = f"<Cube currency={quoteattr(currency)} rate={quoteattr(rate)}/>"
    try:
        reference = parse_ecb_daily(daily(entry))
    except RateFileInvalid:
        return
    assert reference.per_eur[currency] == Decimal(rate) > 0
