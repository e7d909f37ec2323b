"""Prometheus metrics: what a payments on-call watches, from the API and the worker.

Each process has its own registry and serves it: the API at `GET /metrics`, the
worker on `PAYSAGA_WORKER_METRICS_PORT` (off when 0), where the Temporal SDK's own
metrics (`temporal_*`) are served beside ours. Labels are bounded: channel,
currency, status, outcome, reason, kind, route; never an order, merchant or buyer id.

    worker (metrics.business: counted in activities, once per business event)
      paysaga_orders_finished_total{channel,status}     completed, closed, cancelled,
                                                        refunded, rejected
      paysaga_payments_total{channel,outcome}           succeeded, declined, timeout,
                                                        cancelled, channel_error
      paysaga_payments_amount_minor_total{channel,currency}
      paysaga_refunds_total{channel,kind,outcome}       requested | compensation | late_payment
      paysaga_refunds_amount_minor_total{channel,currency}
      paysaga_payouts_total{outcome}                    paid, returned
      paysaga_payouts_amount_minor_total{currency}
      paysaga_orders_flagged_for_review_total{channel}
      paysaga_webhook_deliveries_total{outcome}         per attempt: delivered, failed,
                                                        undeliverable
    worker (metrics.reconciliation: once per exception recorded or settled, per run)
      paysaga_reconciliation_exceptions_total{channel,type}      domain.reconciliation types
      paysaga_reconciliation_auto_resolved_total{channel,type}   settled by a channel query
      paysaga_reconciliation_runs_total{channel,outcome}         clean, exceptions
      temporal_*                                        the SDK's: workflows by type and
                                                        outcome, pollers, task latencies
    API (metrics.edge: per request)
      paysaga_http_request_duration_seconds{method,route,status}   route: its template
      paysaga_channel_notifications_total{channel,outcome,reason}  accepted, ignored,
                                                                   refused (reason), failed
      paysaga_payment_notification_delay_seconds{channel}  the channel's payment time to
                                                           our accepting its notification
      paysaga_order_status_waits_total{outcome}        GET /v1/orders/{id}/status-change
                                                        and the checkout's /status waits:
                                                        moved, unchanged, full,
                                                        caller_full, gone (a checkout
                                                        page told full still gets its
                                                        answer, at once)
      paysaga_order_status_waiters                      such requests waiting now
    API (metrics.state: read from the database at scrape time, at most every
         PAYSAGA_METRICS_STATE_REFRESH_SECONDS)
      paysaga_orders_open{channel,status}               orders not in a final status
      paysaga_orders_past_payment_timeout{channel}      unpaid, their payment timeout passed
      paysaga_orders_payment_overdue_seconds{channel}   how far past it the oldest one is
      paysaga_orders_needing_review{channel}
      paysaga_webhook_events_undelivered{state}         new, retrying, expired
      paysaga_ledger_trial_balance_minor{currency}      0, or the ledger is broken
      paysaga_database_state_up                         1 when the last read worked
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, disable_created_metrics


def new_registry() -> CollectorRegistry:
    """A registry of our own (never the library's global one), without `_created` series:
    they double every counter's series and nothing we alert on reads them."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    return CollectorRegistry(auto_describe=True)
