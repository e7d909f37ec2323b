"""Fresh key material for every simulated channel, as environment variables.

`make run` writes these once to `var/secrets.env`; tests make their own per
session. Each pair is split the way the real world splits it: the app's half
(`PAYSAGA_ALIPAY__*`, `PAYSAGA_WECHATPAY__*`, `PAYSAGA_CARD__*`) is what we would
configure for a live channel, and the sandbox's half (`PAYSAGA_SANDBOX_KEYS__*`)
is what Alipay or WeChat Pay would hold. Keys are one-line base64 DER so that
each fits on one line of an env file. WeChat Pay runs in certificate mode: we are
given no platform key, and download the sandbox's platform certificates.
"""

from __future__ import annotations

import secrets

from channels.rsa2 import new_private_key, private_key_text, public_key_text


def _serial() -> str:
    return secrets.token_hex(20).upper()  # a certificate serial number, as WeChat Pay shows it


def generate_credentials() -> dict[str, str]:
    alipay_app, alipay_platform = new_private_key(), new_private_key()
    wechat_merchant, wechat_platform = new_private_key(), new_private_key()
    return {
        "PAYSAGA_SANDBOX_API_KEY": secrets.token_urlsafe(32),
        "PAYSAGA_SANDBOX_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "PAYSAGA_ALIPAY__APP_ID": f"20210{secrets.randbelow(10**11):011d}",
        "PAYSAGA_ALIPAY__SELLER_ID": f"20880{secrets.randbelow(10**11):011d}",
        "PAYSAGA_ALIPAY__APP_PRIVATE_KEY": private_key_text(alipay_app),
        "PAYSAGA_ALIPAY__ALIPAY_PUBLIC_KEY": public_key_text(alipay_platform.public_key()),
        "PAYSAGA_WECHATPAY__MCHID": f"19{secrets.randbelow(10**8):08d}",
        "PAYSAGA_WECHATPAY__APPID": f"wx{secrets.token_hex(8)}",
        "PAYSAGA_WECHATPAY__MERCHANT_SERIAL": _serial(),
        "PAYSAGA_WECHATPAY__MERCHANT_PRIVATE_KEY": private_key_text(wechat_merchant),
        "PAYSAGA_WECHATPAY__APIV3_KEY": secrets.token_hex(16),  # 32 characters = 32 bytes
        "PAYSAGA_CARD__SECRET_KEY": f"sk_test_{secrets.token_urlsafe(24)}",
        "PAYSAGA_CARD__WEBHOOK_SECRET": f"whsec_{secrets.token_urlsafe(24)}",
        "PAYSAGA_SANDBOX_KEYS__ALIPAY_PRIVATE_KEY": private_key_text(alipay_platform),
        "PAYSAGA_SANDBOX_KEYS__ALIPAY_APP_PUBLIC_KEY": public_key_text(alipay_app.public_key()),
        "PAYSAGA_SANDBOX_KEYS__WECHATPAY_PLATFORM_PRIVATE_KEY": private_key_text(wechat_platform),
        "PAYSAGA_SANDBOX_KEYS__WECHATPAY_MERCHANT_PUBLIC_KEY": public_key_text(
            wechat_merchant.public_key()
        ),
    }
