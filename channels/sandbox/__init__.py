"""The sandbox: a stand-alone HTTP service that plays a third-party payment channel.

It simulates `alipay`, `wechatpay` and `card`, each under `/{channel}`, with one
shared protocol (`protocol.py`), and a bank that pays merchants out under
`/bank`. Modules, one job each:

    app.py             create_app(): wiring and lifespan (shared client, notifier tasks)
    api.py             the channel API our platform calls (`/{channel}/api/...`, bearer auth)
    payout_api.py      the bank-transfer API (`/bank/api/payouts`, same auth)
    cashier.py         the checkout pages a buyer pays or declines on
    control.py         test controls: pay, decline, faults, refund and payout behaviour, deliveries
    service.py         what each action does: store transition, then notification
    payout_service.py  the same for payouts, plus the timers that settle them
    store.py           payments, refunds, payouts (persisted), faults and delivery log
    notifier.py        signed notification delivery with retries
    events.py          building notification events
    pages.py           the cashier's HTML
    money.py           amount formatting for people
    errors.py          the sandbox's error and its JSON shape
    deps.py            shared dependencies: the services, API-key check

Run it with `uvicorn --factory channels.sandbox.app:create_app`.
"""
