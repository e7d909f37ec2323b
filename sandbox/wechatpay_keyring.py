"""The sandbox's WeChat Pay platform keys: the certificates it lists, the key it signs with.

    certificate mode   the sandbox is its own CA and issues an X.509 certificate for the
                       configured platform key; its serial is derived from the key, so
                       a restarted sandbox names the same serial
    rotate(overlap)    a new key and a certificate with a new serial sign everything
                       from then on; the old certificate stays listed beside it for
                       `overlap` seconds, as WeChat Pay lists a retiring certificate
                       until merchants have downloaded its successor
    public-key mode    (`sandbox_keys.wechatpay_public_key_id`) the configured key signs
                       under that id; nothing is listed and there is nothing to rotate:
                       a merchant changes its WeChat Pay public key on the merchant platform

One keyring per platform key per process (`keyring_for`): the notifier, built before
the app, and the routes must sign with the same, current, key.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from channels.rsa2 import new_private_key, public_key_text
from sandbox.key_cache import private_key
from settings import Settings

_VALIDITY = timedelta(days=5 * 365)  # WeChat Pay's platform certificates last five years
_ISSUER = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (sandbox)"),
    ]
)


@dataclass(frozen=True)
class IssuedCertificate:
    serial_no: str  # upper-case hex, as Wechatpay-Serial names it
    key: rsa.RSAPrivateKey
    pem: bytes
    not_before: datetime
    not_after: datetime
    listed_until: datetime | None = None  # set when a rotation retires it


class PlatformKeyring:
    """Who the sandbox's WeChat Pay signs as; see the module docstring."""

    def __init__(self, platform_key: rsa.RSAPrivateKey, public_key_id: str = "") -> None:
        self.public_key_id = public_key_id
        self._ca_key = new_private_key()  # the CA's own key: trusted by nobody, as in the SDKs
        self._certificates = [self._issue(platform_key, int(first_serial(platform_key), 16))]

    def signer(self) -> tuple[str, rsa.RSAPrivateKey]:
        """The Wechatpay-Serial and key that sign answers and notifications now."""
        current = self._certificates[-1]
        return (self.public_key_id or current.serial_no), current.key

    def listed(self, now: datetime) -> list[IssuedCertificate]:
        """What GET /v3/certificates answers: certificates not yet retired, oldest first."""
        return [c for c in self._certificates if c.listed_until is None or now < c.listed_until]

    def rotate(self, now: datetime, overlap: timedelta) -> IssuedCertificate:
        """A new key and certificate sign from now; the others stay listed for `overlap`."""
        if self.public_key_id:
            raise ValueError("public-key mode has no platform certificate to rotate")
        self._certificates = [
            c if c.listed_until else _retired(c, now + overlap) for c in self.listed(now)
        ]
        issued = self._issue(new_private_key(), x509.random_serial_number())
        self._certificates.append(issued)
        return issued

    def _issue(self, key: rsa.RSAPrivateKey, serial: int) -> IssuedCertificate:
        not_before = datetime.now(UTC) - timedelta(days=1)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(_ISSUER)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_before + _VALIDITY)
            .sign(self._ca_key, hashes.SHA256())
        )
        return IssuedCertificate(
            serial_no=f"{serial:X}",
            key=key,
            pem=certificate.public_bytes(serialization.Encoding.PEM),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )


def first_serial(platform_key: rsa.RSAPrivateKey) -> str:
    """The serial of the certificate for the configured key: the same on every start."""
    fingerprint = hashlib.sha256(public_key_text(platform_key.public_key()).encode())
    return f"{int.from_bytes(fingerprint.digest()[:16], 'big') | 1:X}"


def _retired(certificate: IssuedCertificate, at: datetime) -> IssuedCertificate:
    return dataclasses.replace(certificate, listed_until=at)


_KEYRINGS: dict[tuple[str, str], PlatformKeyring] = {}


def keyring_for(settings: Settings) -> PlatformKeyring:
    """This process's keyring for the configured platform key (made on first use)."""
    assert settings.sandbox_keys is not None  # create_app refuses to start without them
    text = settings.sandbox_keys.wechatpay_platform_private_key.get_secret_value()
    public_key_id = settings.sandbox_keys.wechatpay_public_key_id
    ring = _KEYRINGS.get((text, public_key_id))
    if ring is None:
        ring = _KEYRINGS[(text, public_key_id)] = PlatformKeyring(private_key(text), public_key_id)
    return ring
