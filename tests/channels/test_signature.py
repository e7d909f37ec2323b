"""A notification is trusted only if its signature covers the exact bytes, recently."""

from __future__ import annotations

import pytest

from channels.errors import NotificationSignatureError
from channels.signature import SIGNATURE_HEADER, sign, verify

SECRET = b"whsec_test_secret"
BODY = b'{"id":"evt_1","type":"payment.succeeded","amount":1234}'
NOW = 1_700_000_000
TOLERANCE = 300


def check(header: str | None, *, body: bytes = BODY, secret: bytes = SECRET, now: int = NOW) -> int:
    return verify(secret, body, header, now=now, tolerance_seconds=TOLERANCE)


def test_header_name_is_paysaga_signature() -> None:
    assert SIGNATURE_HEADER == "Paysaga-Signature"


def test_a_signed_body_verifies_and_yields_its_timestamp() -> None:
    header = sign(SECRET, BODY, NOW)

    assert header.startswith(f"t={NOW},v1=")
    assert check(header) == NOW


def test_timestamps_at_the_edge_of_tolerance_are_accepted() -> None:
    assert check(sign(SECRET, BODY, NOW - TOLERANCE)) == NOW - TOLERANCE
    assert check(sign(SECRET, BODY, NOW + TOLERANCE)) == NOW + TOLERANCE


def test_any_matching_v1_is_enough_while_a_secret_rotates() -> None:
    old = sign(b"old secret", BODY, NOW).split(",")[1]
    new = sign(SECRET, BODY, NOW).split(",")[1]

    assert check(f"t={NOW},{old},{new}") == NOW
    assert check(f"t={NOW},{new},{old}") == NOW


def test_unknown_schemes_are_ignored() -> None:
    assert check(f"{sign(SECRET, BODY, NOW)},v0=whatever") == NOW


def test_changing_one_byte_of_the_body_breaks_the_signature() -> None:
    header = sign(SECRET, BODY, NOW)
    tampered = BODY.replace(b"1234", b"1235")

    with pytest.raises(NotificationSignatureError) as error:
        check(header, body=tampered)
    assert error.value.code == "signature_mismatch"


def test_a_signature_made_with_another_secret_is_refused() -> None:
    with pytest.raises(NotificationSignatureError):
        check(sign(b"someone else's secret", BODY, NOW))


def test_a_replayed_timestamp_does_not_match_the_signature() -> None:
    genuine = sign(SECRET, BODY, NOW - 3600).split(",")[1]

    with pytest.raises(NotificationSignatureError):
        check(f"t={NOW},{genuine}")


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_refused(header: str | None) -> None:
    with pytest.raises(NotificationSignatureError) as error:
        check(header)
    assert error.value.code == "signature_missing"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"t={NOW}",  # no v1
        "v1=" + "a" * 64,  # no t
        f"t=abc,v1={'a' * 64}",
        f"t=-{NOW},v1={'a' * 64}",
        f"t={NOW},t={NOW},v1={'a' * 64}",
        f"t={NOW},v1=not-hex",
        f"t={NOW},v1={'A' * 64}",
        f"t={NOW},v1={'é' * 64}",
        f"t={NOW},,v1={'a' * 64}",
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(NotificationSignatureError) as error:
        check(header)
    assert error.value.code == "signature_malformed"


@pytest.mark.parametrize("age", [TOLERANCE + 1, 24 * 3600])
def test_a_stale_signature_is_refused(age: int) -> None:
    with pytest.raises(NotificationSignatureError) as error:
        check(sign(SECRET, BODY, NOW - age))
    assert error.value.code == "signature_stale"


def test_a_signature_from_the_future_is_refused() -> None:
    with pytest.raises(NotificationSignatureError) as error:
        check(sign(SECRET, BODY, NOW + TOLERANCE + 1))
    assert error.value.code == "signature_stale"


def test_errors_never_echo_the_secret() -> None:
    with pytest.raises(NotificationSignatureError) as error:
        check(sign(b"other", BODY, NOW))
    assert SECRET.decode() not in str(error.value)
