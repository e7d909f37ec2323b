"""What the merchant routes take and answer. The bank account goes in whole and comes
out as its last 4 characters only; the webhook secret comes out once, when made."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictStr

from api.rates import DecimalString
from api.text import PlainText

_Forbid = ConfigDict(extra="forbid")

Name = Annotated[PlainText, Field(min_length=1, max_length=200)]
CommissionRate = Annotated[
    DecimalString,
    Field(
        ge=0,
        le=1,
        max_digits=8,
        decimal_places=6,
        description='Our share of each order, a decimal string from "0" to "1" ("0.05": 5%); '
        "a JSON number is refused (400 `invalid_decimal_string`).",
    ),
]
Currency = Annotated[StrictStr, Field(min_length=3, max_length=3)]
# An IBAN or a domestic account number: letters and digits, spaces allowed for grouping.
BankAccount = Annotated[StrictStr, Field(min_length=6, max_length=42, pattern=r"^[A-Za-z0-9 ]+$")]


class MerchantCreate(BaseModel):
    model_config = _Forbid
    name: Name
    commission_rate: CommissionRate
    settlement_currency: Currency
    bank_account_number: BankAccount
    webhook_url: HttpUrl | None = None


class MerchantUpdate(BaseModel):
    """Operators' changes; a field left out is left as it is."""

    model_config = _Forbid
    name: Name | None = None
    commission_rate: CommissionRate | None = None
    settlement_currency: Currency | None = None
    bank_account_number: BankAccount | None = None
    webhook_url: HttpUrl | None = None


class MerchantOut(BaseModel):
    id: str
    name: str
    commission_rate: str
    status: str
    settlement_currency: str | None
    bank_account_last4: str | None
    webhook_url: str | None
    created_at: datetime


class MerchantPage(BaseModel):
    data: list[MerchantOut]
    has_more: bool
    next_cursor: str | None


class MerchantCreated(MerchantOut):
    """The onboarding answer: the only time, with a rotation's, that the secret is shown."""

    webhook_secret: str


class WebhookConfig(BaseModel):
    model_config = _Forbid
    url: HttpUrl | None  # None: stop sending webhooks


class WebhookSecretOut(BaseModel):
    merchant_id: str
    webhook_secret: str  # shown once; deliveries from now on are signed with it
