"""The sandbox: a stand-alone HTTP service that plays a third-party payment channel.

It simulates `alipay`, `wechatpay` and `card`, each under `/{channel}` and over
that channel's real protocol (a "front" per channel over one channel-neutral
core: `service.py`, `store.py`, `protocol.py`), and a bank that pays merchants
out under `/bank`. Modules, one job each:

    app.py             create_app(): wiring and lifespan (shared client, notifier tasks)
    alipay_front.py    Alipay's gateway (`/alipay/gateway.do`); alipay_notify.py its notifications
    wechatpay_front.py WeChat Pay API v3 (`/wechatpay/v3/...`) and its notifications
    card_front.py      the card gateway (`/card/v1/...`, hosted page) and its webhooks
    credentials.py     fresh key material for every channel (both halves)
    payout_api.py      the bank-transfer API (`/bank/api/payouts`, bearer auth)
    bank_notify.py     the bank's signed payout notifications
    cashier.py         the checkout pages a buyer pays or declines on
    control.py         test controls (bearer auth): pay, decline, faults, refunds, payouts
    service.py         what each action does: store transition, then notification
    payout_service.py  the same for payouts, plus the timers that settle them
    store.py           payments, refunds, payouts, notices owed (persisted); faults, deliveries
    notices.py         a notice owed: written with the change that owes it, held until taken
    notifier.py        notification delivery on each channel's retry schedule, compressible
    events.py          building notification events
    pages.py           the cashier's HTML
    money.py           amount formatting for people
    errors.py          the sandbox's error and its JSON shape
    deps.py            shared dependencies: the services, API-key check

Run it with `uvicorn --factory sandbox.app:create_app`.
"""
