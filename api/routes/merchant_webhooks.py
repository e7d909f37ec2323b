"""A merchant's webhook endpoint and signing secret, set by the merchant or an operator.

The secret is sealed under the data key (db.secret_box) and shown only in the answer
that made it; deliveries read the current URL and secret on every attempt.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.auth.caller import MerchantOrOperator
from api.auth.scope import check_merchant
from api.deps import ContextDep
from api.merchant_schemas import MerchantOut, WebhookConfig, WebhookSecretOut
from api.openapi_errors import error_responses
from api.routes.auth import NO_STORE
from api.routes.merchants import load_merchant, merchant_out, new_webhook_secret
from api.services.records import now
from api.services.webhook_urls import checked_webhook_url

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


@router.put("/{merchant_id}/webhook", responses=error_responses(400, 401, 403, 404, 413))
def set_webhook(
    merchant_id: str, body: WebhookConfig, caller: MerchantOrOperator, context: ContextDep
) -> MerchantOut:
    """Set (or, with `null`, remove) the endpoint; retries of pending events use it too.

    Only a public https endpoint (api.services.webhook_urls); anything else is a 400 that
    changes nothing."""
    check_merchant(caller, merchant_id)
    url = checked_webhook_url(body.url, context.settings, "url")
    with context.sessions() as session, session.begin():
        merchant = load_merchant(session, merchant_id)
        merchant.webhook_url = url
        merchant.updated_at = now()
        return merchant_out(merchant)


@router.post("/{merchant_id}/webhook-secret", responses=error_responses(401, 403, 404))
def rotate_webhook_secret(
    merchant_id: str, caller: MerchantOrOperator, context: ContextDep, response: Response
) -> WebhookSecretOut:
    """Replace the signing secret at once; the old one signs nothing from now on."""
    check_merchant(caller, merchant_id)
    response.headers.update(NO_STORE)
    secret = new_webhook_secret()
    with context.sessions() as session, session.begin():
        merchant = load_merchant(session, merchant_id)
        merchant.webhook_secret_ciphertext = context.secret_box.seal(secret)
        merchant.updated_at = now()
    return WebhookSecretOut(merchant_id=merchant_id, webhook_secret=secret)
