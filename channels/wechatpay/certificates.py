"""WeChat Pay's platform keys: reading `GET /v3/certificates`, and which keys we trust.

    answer       {"data": [{"serial_no", "effective_time", "expire_time",
                  "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce",
                  "associated_data", "ciphertext"}}]}
    each entry   opens with the APIv3 key to a PEM X.509 certificate whose serial number
                 must be `serial_no` (hex) and whose key must be RSA; one that does not
                 open or does not match fails the whole list: nothing half-read is trusted
    trust        the APIv3 key is the root: only WeChat Pay and we hold it, and AES-GCM
                 proves who sealed the certificate (the SDKs check no CA chain either)

Pure: the adapter does the download and verifies the answer's own signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from channels.errors import NotificationFormatError
from channels.wechatpay import wire
from channels.wechatpay.crypto import decrypt_resource


class CertificatesUnreadable(Exception):
    """The certificate list cannot be read or trusted; its message names no key material."""


@dataclass(frozen=True)
class PlatformKey:
    """A key WeChat Pay signs with, named by `serial` (a certificate serial or PUB_KEY_ID_...).

    A certificate is trusted from `not_before` to `not_after`; a configured public key
    (public-key mode) has neither and is trusted until it is configured away.
    """

    serial: str
    public_key: rsa.RSAPublicKey
    not_before: datetime | None = None
    not_after: datetime | None = None

    def valid_at(self, unix_seconds: int) -> bool:
        now = datetime.fromtimestamp(unix_seconds, UTC)
        after_start = self.not_before is None or self.not_before <= now
        return after_start and (self.not_after is None or now <= self.not_after)


def read_certificates(body: bytes, api_v3_key: bytes) -> dict[str, PlatformKey]:
    """Every certificate the answer lists, by serial; CertificatesUnreadable if any is bad."""
    try:
        listing = wire.CertificateList.model_validate_json(body)
    except ValidationError as exc:
        raise CertificatesUnreadable(f"unreadable list: {exc.error_count()} error(s)") from None
    keys = [_open(entry, api_v3_key) for entry in listing.data]
    if not keys:
        raise CertificatesUnreadable("the list holds no certificate")
    return {key.serial: key for key in keys}


def _open(entry: wire.CertificateEntry, api_v3_key: bytes) -> PlatformKey:
    sealed = entry.encrypt_certificate
    if sealed.algorithm != wire.RESOURCE_ALGORITHM:
        raise CertificatesUnreadable(f"certificate {entry.serial_no} is not AEAD_AES_256_GCM")
    try:
        pem = decrypt_resource(api_v3_key, sealed.nonce, sealed.associated_data, sealed.ciphertext)
        certificate = x509.load_pem_x509_certificate(pem)
    except (NotificationFormatError, ValueError):
        raise CertificatesUnreadable(f"certificate {entry.serial_no} does not open") from None
    if _serial_number(entry.serial_no) != certificate.serial_number:
        raise CertificatesUnreadable(f"certificate {entry.serial_no} has another serial number")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CertificatesUnreadable(f"certificate {entry.serial_no} holds no RSA key")
    return PlatformKey(
        serial=entry.serial_no,
        public_key=public_key,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def _serial_number(serial_no: str) -> int | None:
    try:
        return int(serial_no, 16)
    except ValueError:
        return None
