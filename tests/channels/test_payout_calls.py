"""The payout activity against the sandbox bank over HTTP: a refusal is final only when
the bank has no such payout. A settlement started again asks with what it knows now (the
merchant renamed since: the bank answers `payout_id_conflict`); the payout the bank has
is what it is, never returned to the merchant while the bank pays it."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from temporalio.testing import ActivityEnvironment

from activities.payout_calls import PayoutCalls
from channels.bank import BankTransferAdapter, PayoutStatus
from domain.settlement import PayoutOrder

if TYPE_CHECKING:
    from tests.channels.conftest import Control, Inbox


def _order(merchant_id: str, beneficiary: str, amount: int = 150_000) -> PayoutOrder:
    return PayoutOrder(
        payout_id=f"po_{secrets.token_hex(8)}",
        statement_id="st_1",
        merchant_id=merchant_id,
        amount=amount,
        currency="CNY",
        beneficiary=beneficiary,
    )


async def test_a_payout_asked_again_with_another_name_is_the_one_the_bank_has(
    bank: BankTransferAdapter, control: Control, inbox: Inbox
) -> None:
    merchant_id = f"merchant_{secrets.token_hex(6)}"
    held = await control.post(f"/payout-behaviour/{merchant_id}", {"mode": "hold"})
    assert held.status_code == 200, held.text
    calls = PayoutCalls(bank, inbox.url)
    first = _order(merchant_id, "Tea Shop ****1234")
    accepted = await ActivityEnvironment().run(calls.send_payout, first)
    assert accepted.status is PayoutStatus.PENDING

    renamed = first.model_copy(update={"beneficiary": "Tea House ****1234"})
    again = await ActivityEnvironment().run(calls.send_payout, renamed)

    assert again == accepted  # pending at the bank, not failed here


async def test_a_payout_the_bank_refuses_and_does_not_have_fails(
    bank: BankTransferAdapter, inbox: Inbox
) -> None:
    merchant_id = f"merchant_{secrets.token_hex(6)}"
    calls = PayoutCalls(bank, inbox.url)
    refused = _order(merchant_id, "Tea Shop").model_copy(update={"currency": "cny"})

    state = await ActivityEnvironment().run(calls.send_payout, refused)

    assert state.status is PayoutStatus.FAILED
    assert state.failure_reason is not None and state.failure_reason.startswith("invalid_request")
