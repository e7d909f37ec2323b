"""The bank-transfer adapter against the sandbox bank, over real HTTP.

Each test tells what our platform (through `BankTransferAdapter`) or the bank
(through the control API) does, and what must then be true. The sandbox here
settles a payout 50 ms after creating it; nothing waits by sleeping, every
wait polls a condition with a deadline (`wait_for`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from channels.bank import (
    BankTransferAdapter,
    PayoutNotification,
    PayoutRequest,
    PayoutState,
    PayoutStatus,
)
from channels.errors import (
    ChannelRejected,
    ChannelUnavailable,
    NotificationFormatError,
    NotificationSignatureError,
    PayoutNotFound,
)
from channels.registry import build_bank
from channels.signature import SIGNATURE_HEADER, sign
from domain.fx.conversion import convert
from sandbox.protocol import PayoutCreate
from sandbox.store import Store
from tests.channels.conftest import CONTROL_HEADERS
from tests.support import wait_for

if TYPE_CHECKING:
    from tests.channels.conftest import (
        Control,
        Inbox,
        ReceivedRequest,
        Receiver,
        RestartableSandbox,
        RunningSandbox,
    )


@pytest.fixture
def merchant_id() -> str:
    """Behaviour and faults are per merchant, so every test pays out to its own."""
    return f"merchant_{secrets.token_hex(6)}"


@pytest.fixture
def payout_id() -> str:
    return f"po_{secrets.token_hex(8)}"


def payout_request(
    payout_id: str, merchant_id: str, inbox: Inbox, amount: int = 150_000
) -> PayoutRequest:
    return PayoutRequest(
        payout_id=payout_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="CNY",
        beneficiary="Tea Shop Ltd ****1234",
        notify_url=inbox.url,
    )


async def behave(control: Control, merchant_id: str, mode: str) -> None:
    response = await control.post(f"/payout-behaviour/{merchant_id}", {"mode": mode})
    assert response.status_code == 200, response.text


async def settle(control: Control, payout_id: str, action: str) -> httpx.Response:
    return await control.post(f"/payouts/{payout_id}/{action}")


async def notices(inbox: Inbox, count: int) -> list[ReceivedRequest]:
    return await wait_for(inbox.received, lambda got: len(got) >= count, f"{count} notice(s)")


async def deliveries(client: httpx.AsyncClient, base_url: str, payout_id: str) -> list[Any]:
    url = f"{base_url}/control/payouts/{payout_id}/deliveries"
    response = await client.get(url, headers=CONTROL_HEADERS)
    response.raise_for_status()
    found: list[Any] = response.json()
    return found


async def settled(bank: BankTransferAdapter, payout_id: str) -> PayoutState:
    return await wait_for(
        lambda: bank.query_payout(payout_id),
        lambda payout: payout.status is not PayoutStatus.PENDING,
        f"payout {payout_id} to settle",
    )


async def only_notification(bank: BankTransferAdapter, inbox: Inbox) -> PayoutNotification:
    (notice,) = await notices(inbox, 1)
    return bank.parse_notification(notice.headers, notice.body)


# -- creating and querying payouts ----------------------------------------------


async def test_a_new_payout_is_pending_and_creating_it_again_returns_it(
    bank: BankTransferAdapter, control: Control, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    await behave(control, merchant_id, "hold")

    created = await bank.create_payout(payout_request(payout_id, merchant_id, inbox))
    again = await bank.create_payout(payout_request(payout_id, merchant_id, inbox))

    assert again == created == await bank.query_payout(payout_id)
    assert created == PayoutState(
        payout_id=payout_id,
        merchant_id=merchant_id,
        amount=150_000,
        currency="CNY",
        status=PayoutStatus.PENDING,
    )


async def test_reusing_a_payout_id_for_other_money_or_another_beneficiary_conflicts(
    bank: BankTransferAdapter, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    request = payout_request(payout_id, merchant_id, inbox)
    await bank.create_payout(request)

    for changed in ({"amount": 150_001}, {"beneficiary": "Someone Else ****9999"}):
        with pytest.raises(ChannelRejected) as error:
            await bank.create_payout(request.model_copy(update=changed))
        assert error.value.code == "payout_id_conflict"
        assert not error.value.retryable


async def test_a_zero_amount_is_rejected(
    bank: BankTransferAdapter, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    with pytest.raises(ChannelRejected) as error:
        await bank.create_payout(payout_request(payout_id, merchant_id, inbox, amount=0))
    assert error.value.code == "invalid_request"


async def test_an_unknown_payout_is_not_found(bank: BankTransferAdapter, payout_id: str) -> None:
    with pytest.raises(PayoutNotFound) as error:
        await bank.query_payout(payout_id)
    assert error.value.code == "payout_not_found"
    assert not error.value.retryable


async def test_a_wrong_api_key_is_rejected_without_leaking_it(
    sandbox: RunningSandbox, client: httpx.AsyncClient, payout_id: str
) -> None:
    wrong_key = "wrong_" + secrets.token_hex(8)
    bank = BankTransferAdapter(
        f"{sandbox.base_url}/bank", wrong_key, sandbox.webhook_secret, 300, client
    )

    with pytest.raises(ChannelRejected) as error:
        await bank.query_payout(payout_id)
    assert error.value.code == "unauthorized"
    assert wrong_key not in str(error.value) and wrong_key not in repr(bank)


async def test_injected_api_failures_are_unavailable_then_the_call_succeeds(
    bank: BankTransferAdapter, control: Control, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    request = payout_request(payout_id, merchant_id, inbox)
    await control.fail_api(merchant_id, times=2)

    for _ in range(2):
        with pytest.raises(ChannelUnavailable) as error:
            await bank.create_payout(request)
        assert (error.value.code, error.value.retryable) == ("unavailable", True)
    created = await bank.create_payout(request)

    await control.fail_api(merchant_id, times=1)
    with pytest.raises(ChannelUnavailable):
        await bank.query_payout(payout_id)
    assert (await bank.query_payout(payout_id)).payout_id == created.payout_id


# -- a payout the bank converts for a merchant settled in another currency ---------


async def test_a_converted_payout_credits_the_bank_rate_and_says_so_when_paid(
    bank: BankTransferAdapter, control: Control, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    await behave(control, merchant_id, "hold")  # pending until told: compared whole below
    request = payout_request(payout_id, merchant_id, inbox).model_copy(
        update={"credit_currency": "USD"}
    )
    created = await bank.create_payout(request)

    credited = created.credited
    assert credited is not None and credited.currency == "USD"
    rate = Decimal(credited.rate)
    assert Decimal("0.12") < rate < Decimal("0.15")  # USD per CNY, the bank's own market
    assert credited.amount == convert(150_000, "CNY", "USD", rate).target_amount
    assert await bank.create_payout(request) == created  # the rate is fixed when accepted
    complete = await control.post(f"/payouts/{payout_id}/complete", {})
    assert complete.status_code == 200, complete.text
    notification = await only_notification(bank, inbox)
    assert notification.payout.status is PayoutStatus.PAID
    assert notification.payout.credited == credited
    assert notification.payout.outcome().credited == credited
    assert (notification.payout.amount, notification.payout.currency) == (150_000, "CNY")


async def test_a_payout_is_not_converted_into_its_own_currency(
    bank: BankTransferAdapter, control: Control, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    await behave(control, merchant_id, "hold")
    request = payout_request(payout_id, merchant_id, inbox)
    same = await bank.create_payout(request.model_copy(update={"credit_currency": "CNY"}))
    assert same.credited is None


async def test_a_credit_currency_the_bank_does_not_trade_or_a_changed_one_is_refused(
    bank: BankTransferAdapter, control: Control, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    await behave(control, merchant_id, "hold")
    request = payout_request(payout_id, merchant_id, inbox)
    with pytest.raises(ChannelRejected) as error:
        await bank.create_payout(request.model_copy(update={"credit_currency": "BRL"}))
    assert error.value.code == "currency_not_supported" and not error.value.retryable
    with pytest.raises(ChannelRejected) as error:
        await bank.create_payout(request.model_copy(update={"credit_currency": "usd"}))
    assert error.value.code == "invalid_request"
    with pytest.raises(PayoutNotFound):
        await bank.query_payout(payout_id)  # nothing was created

    await bank.create_payout(request.model_copy(update={"credit_currency": "EUR"}))
    with pytest.raises(ChannelRejected) as error:
        await bank.create_payout(request.model_copy(update={"credit_currency": "USD"}))
    assert error.value.code == "payout_id_conflict"


async def test_a_payout_worth_nothing_once_converted_is_refused(
    bank: BankTransferAdapter, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    one_won = payout_request(payout_id, merchant_id, inbox, amount=1).model_copy(
        update={"currency": "KRW", "credit_currency": "USD"}
    )  # about 0.07 US cents: rounds to nothing
    with pytest.raises(ChannelRejected) as error:
        await bank.create_payout(one_won)
    assert error.value.code == "amount_too_small"


# -- settling: paid, failed, held -----------------------------------------------


async def test_a_payout_is_paid_after_the_delay_and_the_bank_says_so(
    bank: BankTransferAdapter, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    created = await bank.create_payout(payout_request(payout_id, merchant_id, inbox))
    assert created.status is PayoutStatus.PENDING

    (notice,) = await notices(inbox, 1)

    assert notice.headers["content-type"] == "application/json"
    event = json.loads(notice.body)
    assert (event["type"], event["data"]["payout_id"]) == ("payout.paid", payout_id)
    assert isinstance(event["created"], int)
    notification = bank.parse_notification(notice.headers, notice.body)
    assert notification.notification_id == event["id"] and event["id"].startswith("evt_")
    paid = await bank.query_payout(payout_id)
    assert notification.payout == paid
    assert paid.status is PayoutStatus.PAID
    assert paid.bank_reference and paid.failure_reason is None
    assert (paid.amount, paid.currency, paid.merchant_id) == (150_000, "CNY", merchant_id)


async def test_a_frozen_account_fails_the_payout_and_says_why(
    bank: BankTransferAdapter, control: Control, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    await behave(control, merchant_id, "fail")

    await bank.create_payout(payout_request(payout_id, merchant_id, inbox))

    notification = await only_notification(bank, inbox)
    failed = await bank.query_payout(payout_id)
    assert notification.payout == failed
    assert (failed.status, failed.failure_reason) == (PayoutStatus.FAILED, "account_frozen")
    assert failed.bank_reference is None
    assert json.loads((await inbox.received())[0].body)["type"] == "payout.failed"


async def test_a_held_payout_waits_until_the_bank_completes_it(
    bank: BankTransferAdapter,
    control: Control,
    receiver: Receiver,
    merchant_id: str,
    payout_id: str,
    inbox: Inbox,
) -> None:
    await behave(control, merchant_id, "hold")
    await bank.create_payout(payout_request(payout_id, merchant_id, inbox))
    # A payout created after it, for a merchant that is paid normally, settles first.
    other_id = f"{payout_id}_other"
    await bank.create_payout(payout_request(other_id, f"{merchant_id}_other", receiver.inbox()))
    await settled(bank, other_id)
    assert (await bank.query_payout(payout_id)).status is PayoutStatus.PENDING

    completed = await settle(control, payout_id, "complete")
    again = await settle(control, payout_id, "complete")

    assert completed.status_code == again.status_code == 200
    assert completed.json() == again.json()
    notification = await only_notification(bank, inbox)
    paid = await bank.query_payout(payout_id)
    assert notification.payout == paid and paid.status is PayoutStatus.PAID
    assert paid.bank_reference == completed.json()["bank_reference"]
    refused = await settle(control, payout_id, "fail")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "payout_settled")


async def test_a_held_payout_fails_when_the_bank_refuses_it(
    bank: BankTransferAdapter, control: Control, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    await behave(control, merchant_id, "hold")
    await bank.create_payout(payout_request(payout_id, merchant_id, inbox))

    response = await settle(control, payout_id, "fail")

    assert response.status_code == 200
    notification = await only_notification(bank, inbox)
    assert notification.payout.status is PayoutStatus.FAILED
    assert notification.payout.failure_reason == "account_frozen"
    assert (await bank.query_payout(payout_id)).status is PayoutStatus.FAILED


async def test_settling_an_unknown_payout_is_not_found(control: Control, payout_id: str) -> None:
    response = await settle(control, payout_id, "complete")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "payout_not_found")


# -- notifications ----------------------------------------------------------------


async def test_failed_deliveries_are_retried_with_the_same_event_id(
    bank: BankTransferAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    receiver: Receiver,
    merchant_id: str,
    payout_id: str,
) -> None:
    inbox = receiver.inbox(fail_first=2)

    await bank.create_payout(payout_request(payout_id, merchant_id, inbox))

    attempts = await wait_for(
        lambda: deliveries(client, sandbox.base_url, payout_id),
        lambda found: len(found) >= 3,
        "three delivery attempts",
    )
    assert [(a["attempt"], a["status_code"], a["type"]) for a in attempts] == [
        (1, 500, "payout.paid"),
        (2, 500, "payout.paid"),
        (3, 200, "payout.paid"),
    ]
    ids = {
        bank.parse_notification(n.headers, n.body).notification_id for n in await notices(inbox, 3)
    }
    assert ids == {attempts[0]["event_id"]}


async def test_a_tampered_or_unsigned_notification_is_refused(
    bank: BankTransferAdapter, merchant_id: str, payout_id: str, inbox: Inbox
) -> None:
    await bank.create_payout(payout_request(payout_id, merchant_id, inbox))
    (notice,) = await notices(inbox, 1)

    with pytest.raises(NotificationSignatureError):
        bank.parse_notification(notice.headers, notice.body.replace(b"150000", b"950000"))
    unsigned = {k: v for k, v in notice.headers.items() if k != SIGNATURE_HEADER.lower()}
    with pytest.raises(NotificationSignatureError):
        bank.parse_notification(unsigned, notice.body)


async def test_a_notification_signed_with_another_secret_is_refused(
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    bank: BankTransferAdapter,
    merchant_id: str,
    payout_id: str,
    inbox: Inbox,
) -> None:
    await bank.create_payout(payout_request(payout_id, merchant_id, inbox))
    (notice,) = await notices(inbox, 1)
    other_secret = secrets.token_hex(32).encode()
    mistrusting = BankTransferAdapter(
        f"{sandbox.base_url}/bank", sandbox.api_key, other_secret, 300, client
    )

    with pytest.raises(NotificationSignatureError):
        mistrusting.parse_notification(notice.headers, notice.body)


def _paid_and_credited(**credit: object) -> bytes:
    payout = {
        "payout_id": "po_1",
        "merchant_id": "m_1",
        "amount": 100,
        "currency": "CNY",
        "status": "paid",
        "failure_reason": None,
        "bank_reference": "bank_1",
        "credit_currency": "USD",
    }
    event = {"id": "evt_1", "type": "payout.paid", "created": 1, "data": payout | credit}
    return json.dumps(event).encode()


def test_a_credit_that_holds_is_read(bank: BankTransferAdapter, sandbox: RunningSandbox) -> None:
    body = _paid_and_credited(credited_amount=14, credit_rate="0.14")
    headers = {SIGNATURE_HEADER: sign(sandbox.webhook_secret, body, int(time.time()))}
    credited = bank.parse_notification(headers, body).payout.credited
    assert credited is not None and (credited.amount, credited.rate) == (14, "0.14")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"id": "evt_1", "type": "payout.paid"}',
        b'{"id": "evt_1", "type": "payment.succeeded", "created": 1, "data": {}}',
        json.dumps(
            {
                "id": "evt_1",
                "type": "payout.paid",  # but the payout itself failed
                "created": 1,
                "data": {
                    "payout_id": "po_1",
                    "merchant_id": "m_1",
                    "amount": 100,
                    "currency": "CNY",
                    "status": "failed",
                    "failure_reason": "account_frozen",
                    "bank_reference": None,
                },
            }
        ).encode(),
        # A converted payout whose figures do not hold: 100 fen at 0.14 is 14 cents, not
        # 15; a credit of nothing; a rate that is no number; a credit without its rate.
        *(
            _paid_and_credited(**credit)
            for credit in (
                {"credited_amount": 15, "credit_rate": "0.14"},
                {"credited_amount": 0, "credit_rate": "0.14"},
                {"credited_amount": 14, "credit_rate": "=1+1"},
                {"credited_amount": 14, "credit_rate": None},
            )
        ),
    ],
)
def test_a_correctly_signed_but_unreadable_body_is_a_format_error(
    bank: BankTransferAdapter, sandbox: RunningSandbox, body: bytes
) -> None:
    headers = {SIGNATURE_HEADER: sign(sandbox.webhook_secret, body, int(time.time()))}

    with pytest.raises(NotificationFormatError):
        bank.parse_notification(headers, body)


def test_the_acknowledgement_is_a_small_json_ok(bank: BankTransferAdapter) -> None:
    ack = bank.acknowledgement()

    assert (ack.status_code, ack.body, ack.media_type) == (
        200,
        '{"received":true}',
        "application/json",
    )


# -- restarts ---------------------------------------------------------------------


async def test_the_bank_remembers_payouts_across_its_restart(
    restartable_sandbox: RestartableSandbox,
    client: httpx.AsyncClient,
    merchant_id: str,
    payout_id: str,
    inbox: Inbox,
) -> None:
    running = restartable_sandbox.running
    bank = build_bank(running.settings(), client)
    held_merchant, held_id = f"{merchant_id}_held", f"{payout_id}_held"
    hold = await client.post(
        f"{running.base_url}/control/payout-behaviour/{held_merchant}",
        json={"mode": "hold"},
        headers=CONTROL_HEADERS,
    )
    hold.raise_for_status()
    await bank.create_payout(payout_request(held_id, held_merchant, inbox))
    await bank.create_payout(payout_request(payout_id, merchant_id, inbox))
    paid = await settled(bank, payout_id)
    await notices(inbox, 1)  # delivered before the restart, not lost in flight

    await asyncio.to_thread(restartable_sandbox.restart)

    assert await bank.query_payout(payout_id) == paid
    # Its settlement timer died with the process: it waits for the control API.
    assert (await bank.query_payout(held_id)).status is PayoutStatus.PENDING
    completed = await client.post(
        f"{running.base_url}/control/payouts/{held_id}/complete", headers=CONTROL_HEADERS
    )
    assert completed.json()["status"] == "paid"
    received = await notices(inbox, 2)
    parsed = [bank.parse_notification(n.headers, n.body).payout.payout_id for n in received]
    assert sorted(parsed) == sorted([payout_id, held_id])


async def test_a_snapshot_from_before_payouts_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps({"payments": [], "refunds": []}))
    store = Store(path)

    payout, created = await store.create_payout(
        PayoutCreate(
            payout_id="po_1",
            merchant_id="m_1",
            amount=100,
            currency="CNY",
            beneficiary="Tea Shop",
            notify_url="http://127.0.0.1/notify",
        )
    )

    assert created and await Store(path).payout("po_1") == payout
