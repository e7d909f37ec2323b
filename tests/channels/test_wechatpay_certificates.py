"""WeChat Pay's platform keys change: our adapter follows a rotation, and trusts nothing else.

The sandbox runs in this process (its ASGI app over httpx), each test with a platform
key of its own, so that rotating it touches no other test. Certificate downloads are
counted at the transport; the adapter's download pacing runs on a clock the test moves.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from channels import rsa2
from channels.base import Notification, NotificationKind
from channels.errors import ChannelUnavailable, NotificationSignatureError, PaymentNotFound
from channels.wechatpay.adapter import WeChatPayAdapter
from channels.wechatpay.crypto import response_message
from sandbox.app import create_app
from sandbox.protocol import Event, EventData
from sandbox.wechatpay_front import notifications
from sandbox.wechatpay_keyring import first_serial
from settings import Settings
from tests.channels.conftest import _CREDENTIALS
from tests.support import settings_from_env

BASE_URL = "http://sandbox.test"
REFRESH_SECONDS = 60
FORGER = rsa2.new_private_key()  # a key nobody trusts


@dataclass
class Sandbox:
    """An in-process sandbox, our adapter against it, and what the adapter downloaded."""

    settings: Settings
    client: httpx.AsyncClient
    adapter: WeChatPayAdapter
    downloads: list[str]  # the paths of certificate downloads, as sent
    monotonic: list[float]  # the adapter's pacing clock, which the test moves

    def wait_past_the_refresh_limit(self) -> None:
        self.monotonic[0] += REFRESH_SECONDS

    async def rotate(self, overlap_seconds: int = 3600) -> dict[str, object]:
        api_key = self.settings.sandbox_api_key.get_secret_value()
        response = await self.client.post(
            f"{BASE_URL}/control/wechatpay/platform-certificate/rotate",
            json={"overlap_seconds": overlap_seconds},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        response.raise_for_status()
        rotation: dict[str, object] = response.json()
        return rotation


def sandbox_settings(**overrides: str) -> Settings:
    """The session's credentials with a platform key of the test's own (its own keyring)."""
    fresh_key = rsa2.private_key_text(rsa2.new_private_key())
    env = {
        **_CREDENTIALS,
        "PAYSAGA_SANDBOX_BASE_URL": BASE_URL,
        "PAYSAGA_SANDBOX_STORE_PATH": "",
        "PAYSAGA_SANDBOX_KEYS__WECHATPAY_PLATFORM_PRIVATE_KEY": fresh_key,
        "PAYSAGA_WECHATPAY__CERTIFICATE_REFRESH_SECONDS": str(REFRESH_SECONDS),
        **{f"PAYSAGA_{name.upper()}": value for name, value in overrides.items()},
    }
    return settings_from_env(env)


@pytest_asyncio.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with _running(sandbox_settings()) as running:
        yield running


class _running:
    """The sandbox app with its lifespan, and an adapter over it that counts downloads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)

    async def __aenter__(self) -> Sandbox:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        root.handlers[:], root.level = handlers, level  # the sandbox's logging setup is not ours
        downloads: list[str] = []

        async def count(request: httpx.Request) -> None:
            if request.url.path.endswith("/v3/certificates"):
                downloads.append(request.url.path)

        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), event_hooks={"request": [count]}
        )
        monotonic = [1_000.0]
        adapter = WeChatPayAdapter(
            self.settings.wechatpay,
            f"{BASE_URL}/wechatpay",
            self.client,
            monotonic=lambda: monotonic[0],
        )
        return Sandbox(self.settings, self.client, adapter, downloads, monotonic)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


def refund_event(order_id: str) -> Event:
    return Event(
        id=f"EV-{secrets.token_hex(4)}",
        type="refund.succeeded",
        created=int(time.time()),
        data=EventData(
            payment_id="pay_1",
            out_trade_no=order_id,
            merchant_id="shop_tea_house",
            amount=1_234,
            currency="CNY",
            txn_id="4200001234",
            status="succeeded",
            refund_id="rf_1",
        ),
    )


def forged(body: bytes, serial: str) -> dict[str, str]:
    """A notification's headers signed by a key nobody trusts, under a made-up serial."""
    stamp, nonce = str(int(time.time())), secrets.token_hex(16)
    key = FORGER
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa2.sign(response_message(stamp, nonce, body.decode()), key),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


async def answers_verified(adapter: WeChatPayAdapter) -> None:
    """A query for an order WeChat Pay does not know: its signed 404 is believed."""
    with pytest.raises(PaymentNotFound):
        await adapter.query_payment(f"ord_{secrets.token_hex(6)}")


async def test_a_rotated_platform_key_is_learnt_and_nothing_signed_by_it_is_refused(
    sandbox: Sandbox,
) -> None:
    await answers_verified(sandbox.adapter)  # the first answer's serial: one download
    assert sandbox.downloads == ["/wechatpay/v3/certificates"]
    assert sandbox.settings.sandbox_keys is not None
    old_serial = first_serial(
        rsa2.load_private_key(
            sandbox.settings.sandbox_keys.wechatpay_platform_private_key.get_secret_value()
        )
    )
    sandbox.wait_past_the_refresh_limit()  # rotations come long after the last download

    rotation = await sandbox.rotate()

    new_serial = rotation["serial_no"]
    assert new_serial != old_serial
    assert rotation["listed"] == [old_serial, new_serial]  # the old one overlaps
    await answers_verified(sandbox.adapter)  # signed by the new key: refreshed, then believed
    assert len(sandbox.downloads) == 2
    message = notifications(sandbox.settings).render(refund_event("ord_1"))
    assert message.headers["Wechatpay-Serial"] == new_serial
    await sandbox.adapter.learn_signer(message.headers)  # what the notify route does first
    notification = sandbox.adapter.parse_notification(message.headers, message.body)
    assert notification == Notification(
        notification_id=notification.notification_id if notification else "",
        kind=NotificationKind.REFUND_SUCCEEDED,
        order_id="ord_1",
        channel_payment_id="ord_1",
        channel_txn_id="4200001234",
        amount=1_234,
        currency="CNY",
        merchant_id=None,
        refund_id="rf_1",
    )
    await answers_verified(sandbox.adapter)
    assert len(sandbox.downloads) == 2  # known serials cost nothing


async def test_made_up_serials_are_refused_and_cannot_make_us_hammer_wechat_pay(
    sandbox: Sandbox,
) -> None:
    await answers_verified(sandbox.adapter)
    body = notifications(sandbox.settings).render(refund_event("ord_2")).body
    sandbox.wait_past_the_refresh_limit()

    for _ in range(20):
        headers = forged(body, serial=secrets.token_hex(20).upper())
        await sandbox.adapter.learn_signer(headers)
        with pytest.raises(NotificationSignatureError):
            sandbox.adapter.parse_notification(headers, body)

    # One download for the first made-up serial; the other 19 fall within the limit.
    assert len(sandbox.downloads) == 2
    await answers_verified(sandbox.adapter)  # and the genuine key is still trusted


async def test_a_retired_certificate_is_no_longer_trusted_once_refreshed(
    sandbox: Sandbox,
) -> None:
    await answers_verified(sandbox.adapter)
    old_signed = notifications(sandbox.settings).render(refund_event("ord_3"))

    await sandbox.rotate(overlap_seconds=0)  # the old certificate is withdrawn at once
    sandbox.wait_past_the_refresh_limit()
    await answers_verified(sandbox.adapter)  # the new serial: the list is downloaded again

    with pytest.raises(NotificationSignatureError):
        sandbox.adapter.parse_notification(old_signed.headers, old_signed.body)


async def test_in_public_key_mode_the_configured_key_verifies_and_nothing_is_downloaded() -> None:
    key = rsa2.new_private_key()
    key_id = f"PUB_KEY_ID_0114{secrets.token_hex(12).upper()}"
    settings = sandbox_settings(
        sandbox_keys__wechatpay_platform_private_key=rsa2.private_key_text(key),
        sandbox_keys__wechatpay_public_key_id=key_id,
        wechatpay__public_key_id=key_id,
        wechatpay__public_key=rsa2.public_key_text(key.public_key()),
    )
    async with _running(settings) as sandbox:
        await answers_verified(sandbox.adapter)
        message = notifications(settings).render(refund_event("ord_4"))
        assert message.headers["Wechatpay-Serial"] == key_id
        await sandbox.adapter.learn_signer(message.headers)
        assert sandbox.adapter.parse_notification(message.headers, message.body) is not None
        sandbox.wait_past_the_refresh_limit()
        headers = forged(message.body, serial=key_id)  # the right id, the wrong key
        with pytest.raises(NotificationSignatureError):
            sandbox.adapter.parse_notification(headers, message.body)
        await sandbox.adapter.learn_signer(forged(message.body, serial="5157F09EFDC096DE"))

        assert sandbox.downloads == []  # public-key mode downloads nothing, ever


async def test_a_certificate_mode_client_of_a_public_key_merchant_cannot_verify() -> None:
    key = rsa2.new_private_key()
    settings = sandbox_settings(
        sandbox_keys__wechatpay_platform_private_key=rsa2.private_key_text(key),
        sandbox_keys__wechatpay_public_key_id="PUB_KEY_ID_01140000000000000000000000000000",
    )
    async with _running(settings) as sandbox:
        with pytest.raises(ChannelUnavailable) as error:
            await sandbox.adapter.query_payment("ord_5")
        assert error.value.code == "certificates_unavailable"  # 404: no certificate to list
