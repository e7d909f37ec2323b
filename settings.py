"""All configuration, from environment variables prefixed `PAYSAGA_`.

Ports, paths, timeouts and secrets live here and nowhere else. Secrets have no
default: `make run` generates them once into `var/secrets.env`, tests generate
their own, and production sets them in its environment.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.polling import PollTimings
from domain.reconciliation import BillWait
from domain.split import check_rate

# No order timing (a payment window, a hold) may be longer than a year: beyond any
# channel's and any buyer's patience, and far inside the database's 32-bit integers.
MAX_ORDER_SECONDS = 365 * 24 * 3600


class AlipaySettings(BaseModel):
    """Our Alipay open-platform app. Live: `gateway_url` https://openapi.alipay.com/gateway.do,
    the app id and seller (partner) id from the console, the app's private key and Alipay's
    public key, each as PEM or one-line base64."""

    gateway_url: str = ""  # empty: the sandbox's {sandbox_base_url}/alipay/gateway.do
    app_id: str
    seller_id: str
    app_private_key: SecretStr
    alipay_public_key: str


class WeChatPaySettings(BaseModel):
    """Our WeChat Pay merchant (API v3). Live: `base_url` https://api.mch.weixin.qq.com."""

    base_url: str = ""  # empty: the sandbox's {sandbox_base_url}/wechatpay
    mchid: str
    appid: str
    merchant_serial: str  # the serial of our API certificate
    merchant_private_key: SecretStr
    apiv3_key: SecretStr  # 32 bytes; opens notification resources and platform certificates
    # How WeChat Pay's signatures are checked. Certificate mode (both empty, the default):
    # platform certificates come from GET /v3/certificates, are kept by serial in each
    # process, and are downloaded again when a serial we do not know signs, at most once
    # per `certificate_refresh_seconds`. Public-key mode: WeChat Pay's public key and its
    # id (PUB_KEY_ID_...) from the merchant platform; nothing is downloaded.
    public_key_id: str = ""
    public_key: str = ""
    certificate_refresh_seconds: float = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _public_key_with_its_id(self) -> WeChatPaySettings:
        if bool(self.public_key_id) != bool(self.public_key):
            raise ValueError("wechatpay public_key and public_key_id go together")
        return self


class CardSettings(BaseModel):
    """The card gateway account: a secret API key and the webhook signing secret."""

    base_url: str = ""  # empty: the sandbox's {sandbox_base_url}/card
    secret_key: SecretStr
    webhook_secret: SecretStr


class SandboxKeys(BaseModel):
    """The sandbox's half of each channel's key material: what the real channel holds."""

    alipay_private_key: SecretStr  # signs responses and notifications "as Alipay"
    alipay_app_public_key: str  # our app's public key, as uploaded to Alipay's console
    wechatpay_platform_private_key: SecretStr
    wechatpay_merchant_public_key: str  # our API certificate's key, as WeChat Pay knows it
    # Set: sign as a merchant in public-key mode sees it, this id as Wechatpay-Serial;
    # empty: under the sandbox's own platform certificate, served at /v3/certificates.
    wechatpay_public_key_id: str = ""


class DatabasePool(BaseModel):
    """The connections a process keeps open (`size`), and how many more it opens under a
    burst and closes after use (`overflow`). Each connection past the kept ones costs an
    open and a close per use (on PostgreSQL a server process forked), so a process keeps
    more of those its threads use at once under load (the API has 40 request threads, the
    worker 32 activity threads). make bench on PostgreSQL (100 orders x 2 rounds, two runs
    each way): keeping 10, 101-112 ms of CPU per order and 11.3-13.0 orders/s; keeping 20,
    95-97 ms and 14.3-14.4 orders/s. The ceiling, 30 a process, is what SQLAlchemy's
    defaults gave before (10 kept, 20 more), so a PostgreSQL sized for it still holds every
    process; its max_connections must hold every process's size and overflow."""

    size: int = Field(default=20, ge=1, le=1000)
    overflow: int = Field(default=10, ge=0, le=1000)

    @property
    def sizes(self) -> tuple[int, int]:
        """(size, overflow), as db.engine.make_engine takes them."""
        return self.size, self.overflow


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYSAGA_", env_nested_delimiter="__", extra="ignore"
    )

    # The app's own database; `DATABASE_URL` is honoured as well as the prefixed name.
    database_url: str = Field(
        default="sqlite:///var/paysaga.db",
        validation_alias=AliasChoices("PAYSAGA_DATABASE_URL", "DATABASE_URL"),
    )

    # Connections each long-running process (the API, the worker) keeps open, and how many
    # more it may open and close per use (PAYSAGA_DATABASE_POOL__SIZE, __OVERFLOW).
    database_pool: DatabasePool = DatabasePool()

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "orders"
    temporal_ui_port: int = 8233
    # Where the pages link an order's workflow; empty: http://127.0.0.1:{temporal_ui_port}.
    temporal_ui_url: str = ""
    temporal_db_path: str = "var/temporal.db"

    # HTTP services
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Where channels send notifications; the sandbox appends /v1/channels/{channel}/notify.
    api_public_url: str = "http://127.0.0.1:8000"
    # The pages' session cookie is `Secure` (sent over https only). Browsers treat
    # http://127.0.0.1 and localhost as secure, so `make run` works as it is; turn it off
    # only for a development server reached over plain http by another name.
    session_cookie_secure: bool = True
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8100
    sandbox_base_url: str = "http://127.0.0.1:8100"
    # Where the sandbox remembers its payments across restarts; empty keeps them in memory.
    sandbox_store_path: str = "var/sandbox.json"

    # Secrets shared with the sandbox channel (its API key and its notification signing key).
    sandbox_api_key: SecretStr
    sandbox_webhook_secret: SecretStr

    # Each channel's credentials (`PAYSAGA_ALIPAY__APP_ID`, ...). Going live is a
    # change of these values only.
    alipay: AlipaySettings
    wechatpay: WeChatPaySettings
    card: CardSettings
    # Only the sandbox process needs these.
    sandbox_keys: SandboxKeys | None = None
    # The sandbox waits this fraction of every real channel's notify retry delay
    # (Alipay: 4m, 10m, ...; WeChat Pay: 15s, 15s, ...); tests compress time with it.
    sandbox_time_scale: float = Field(default=1.0, gt=0, le=1)

    # How long the sandbox bank takes to settle a payout (pay it or fail it).
    sandbox_payout_delay_ms: int = Field(default=500, ge=0)
    # How often the sandbox's channels look for days due to settle (0: only when the
    # control API says `POST /control/sweeps/{channel}/{day}`).
    sandbox_sweep_check_seconds: float = Field(default=60, ge=0)

    # Identities. The JWT key signs access tokens (HS256, pinned); the data key (a Fernet
    # key) encrypts merchants' bank accounts and webhook secrets at rest.
    jwt_secret: SecretStr
    jwt_issuer: str = "paysaga"
    jwt_audience: str = "paysaga-api"
    access_token_seconds: int = Field(default=15 * 60, ge=1)
    refresh_token_seconds: int = Field(default=30 * 24 * 3600, ge=1)
    data_key: SecretStr
    # Sign-in and registration attempts ("limits" notation): per account from one address,
    # per address, and per account from all addresses together (see api.auth.rate_limit).
    auth_rate_per_account: str = "5/minute"
    auth_rate_per_address: str = "30/minute"
    auth_rate_per_account_all_addresses: str = "1000/hour"
    # Where the throttles count: this process's memory, or a shared store for several API
    # replicas (`redis://host:6379/0`, `redis+sentinel://...`: any `limits` storage URI).
    auth_rate_storage_uri: SecretStr = SecretStr("memory://")
    # argon2id's cost for new password hashes: OWASP's minimum by default (19 MiB, 2
    # passes). Lower only where nothing real is protected (the tests: every buyer they
    # make is hashed and signed in); the API logs a warning when it starts below the
    # minimum, and a hash made cheaper is made again at the next sign-in once it is raised.
    password_hash_memory_kib: int = Field(default=19 * 1024, ge=8)
    password_hash_time_cost: int = Field(default=2, ge=1)

    # Merchant webhooks: an event is retried until the merchant answers 2xx, the wait
    # doubling from the initial interval up to the maximum, for the delivery window.
    webhook_retry_initial_ms: int = Field(default=1000, ge=1)
    webhook_retry_maximum_ms: int = Field(default=3600 * 1000, ge=1)
    webhook_delivery_window_seconds: int = Field(default=3 * 24 * 3600, ge=1)
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=25)
    # Webhooks go only to https endpoints on public addresses (domain.webhook_targets),
    # checked when a URL is set and again, after DNS, on every delivery. On: http and
    # loopback, private and internal hosts are allowed too, for a receiver on a developer's
    # machine or the tests' own. Cloud metadata addresses are refused even then.
    webhook_allow_private_targets: bool = False

    # After a worker dies, its workflows wait this long for the server to give their
    # tasks to another: a task it had taken (workflow_task), a task queued for it alone
    # (sticky_queue). Temporal's defaults are 10 s; the tests shorten both.
    workflow_task_timeout_seconds: float = Field(default=10, gt=0, le=120)
    sticky_queue_timeout_seconds: float = Field(default=10, gt=0, le=120)
    # On SIGTERM the worker stops polling and gives running activities this long to end.
    worker_shutdown_seconds: float = Field(default=30, ge=0)
    # The worker's /healthz and /readyz (0: not served).
    worker_health_host: str = "127.0.0.1"
    worker_health_port: int = Field(default=8001, ge=0, le=65535)

    # One JSON object per log line ("json"), or a short readable line ("console"; make run).
    log_format: Literal["json", "console"] = "json"

    # Prometheus metrics. The API serves GET /metrics on its own port. The worker serves
    # its own and the Temporal SDK's on this port; 0 turns them off (the default, and in
    # tests unless a test sets it). `make run` gives the worker `run_worker_metrics_port`
    # when PAYSAGA_WORKER_METRICS_PORT is not set.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    run_worker_metrics_port: int = Field(default=9464, ge=1, le=65535)
    # The API reads its state gauges (open orders, webhook backlog, trial balance) from
    # the database at most this often, however many scrapers ask.
    metrics_state_refresh_seconds: float = Field(default=30, ge=0)

    # Traces go to this OpenTelemetry collector over OTLP/HTTP (`http://collector:4318`;
    # we send to its /v1/traces). Empty: no tracing at all (see telemetry.py).
    otlp_endpoint: str = ""

    # How long the API keeps a caller waiting for a saga: an update or query is sent
    # again, with backoff, while the server says no worker has taken it yet (a worker
    # restarting: its workflow tasks wait workflow_task_timeout_seconds to move on);
    # past this, 503 with Retry-After. And how long POST /v1/orders waits for a checkout
    # while the channel does not take the payment: past this, 503 channel_unavailable,
    # and the saga closes the order unpaid (a retry with the same key reads that).
    api_update_patience_seconds: float = Field(default=30, gt=0, le=120)
    checkout_deadline_seconds: float = Field(default=10, gt=0, le=120)

    # GET /v1/orders/{id}/status-change: how often the API reads the statuses of the
    # orders its requests wait on (one query for all of them, api.order_watch), and how
    # many requests one API process lets wait at once (past it, 503 with Retry-After), and
    # how many of them one caller may hold (past it, 429: one caller cannot fill the rest).
    order_wait_interval_ms: int = Field(default=250, ge=10, le=10_000)
    order_wait_capacity: int = Field(default=1000, ge=0, le=100_000)
    order_wait_per_caller: int = Field(default=100, ge=1, le=100_000)
    # The hosted checkout's pages wait on a watch of their own (api.pages.checkout), so
    # open pages never take the places of API callers: as many pages at once per API
    # process (past it a page is answered at once and asks again after 1.5 s), and at
    # most so many of one order's (its link is its pages' only credential).
    checkout_wait_capacity: int = Field(default=1000, ge=0, le=100_000)
    checkout_wait_per_order: int = Field(default=5, ge=1, le=1000)

    # Notification signatures older or newer than this are rejected.
    notify_tolerance_seconds: int = 300
    channel_timeout_seconds: int = 10

    # Orders
    default_payment_timeout_seconds: int = 15 * 60
    # How soon new sagas ask a channel or the bank about what they have not heard of
    # (`PAYSAGA_POLL__REFUND_FIRST_MS`, ...); see domain.polling.
    poll: PollTimings = PollTimings()
    # A paid order completes (its merchant share becomes available) when the buyer
    # confirms receipt, or after this long without a word.
    auto_complete_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    # The daily settlement (T+1) runs at this hour (UTC) for the day before, on a
    # Temporal Schedule the worker creates if it does not exist yet.
    settlement_hour_utc: int = Field(default=2, ge=0, le=23)
    # Reconciliation (workflows.reconciliation): at this hour (UTC) a Schedule starts the
    # day before's run for each channel. Alipay publishes a day's bill by 09:00 China time
    # (01:00 UTC), WeChat Pay by 10:00 (02:00 UTC); before 16:00 UTC the day before by UTC
    # is the day before in China too. A bill missing after `bill_wait.deadline_seconds`
    # is an exception. Downloaded bills are kept under `reconciliation_work_dir`; our clock
    # may lag a channel's by up to `reconciliation_grace_seconds` (db.reconciliation_match).
    reconciliation_hour_utc: int = Field(default=3, ge=0, le=15)
    reconciliation_channels: tuple[str, ...] = ("alipay", "wechatpay", "card")
    reconciliation_bill_wait: BillWait = BillWait()
    reconciliation_work_dir: Path = Path(tempfile.gettempdir()) / "paysaga-bills"
    reconciliation_grace_seconds: int = Field(default=600, ge=0, le=3600)
    # Buyers may ask for a refund this long after payment; merchants and operators always.
    buyer_refund_window_days: int = Field(default=30, ge=0)
    # Each channel pays a day's takings (less refunds and fees) into our bank this many
    # days later (T+1, T+2); the sweep Schedule asks the bank for them a day after that.
    channel_sweep_lag_days: dict[str, int] = {"alipay": 1, "wechatpay": 1, "card": 2}
    # How often a sweep asks the bank for a day's transfers (at the payout polling's growing
    # intervals) before a booked currency that never arrived is left to an operator
    # (NeedsReview) and what did arrive is posted: a payment the channel never had (one we
    # recorded wrongly) must not hold the day's sweep open for ever.
    channel_sweep_checks: int = Field(default=60, ge=1)
    # The daily channel sweeps run at this hour (UTC), on a Schedule the worker creates.
    channel_sweep_hour_utc: int = Field(default=6, ge=0, le=23)
    # Channel fee rate per channel (a Decimal fraction of the payable amount).
    channel_fee_rates: dict[str, Decimal] = {
        "alipay": Decimal("0.006"),
        "wechatpay": Decimal("0.006"),
        "card": Decimal("0.029"),
    }

    # Cross-border orders (domain.fx, api.services.fx_quotes): where our mid rates come from
    # ("sandbox": reproducible moving rates of `fx_sandbox_seed`; "ecb": the ECB daily
    # file at `fx_ecb_file`, the shipped sample when empty), and the most one cross-border
    # order may charge per currency, in minor units (price and presentment amounts both;
    # a currency not listed has no limit below domain.money.MAX_ORDER_TOTAL).
    fx_rate_source: Literal["sandbox", "ecb"] = "sandbox"
    fx_sandbox_seed: str = "paysaga"
    fx_ecb_file: str = ""
    fx_order_limits: dict[str, int] = {
        "CNY": 50_000_00,
        "USD": 10_000_00,
        "EUR": 10_000_00,
        "JPY": 1_500_000,
    }

    # What callers may send (api.body_guard, api.services.order_creation). The buyer-protection
    # hold is the time a buyer has to ask for a refund before the merchant's share
    # becomes available: a merchant may ask for a longer one per order, never one shorter
    # than the platform's minimum. The payment window is bounded by what the channels
    # keep a payment open for (Alipay takes 1 minute at least; a card checkout lasts a
    # day at most); an unpaid order holds its coupon all that time.
    min_auto_complete_seconds: int = Field(default=7 * 24 * 3600, ge=0, le=MAX_ORDER_SECONDS)
    max_auto_complete_seconds: int = Field(default=90 * 24 * 3600, ge=0, le=MAX_ORDER_SECONDS)
    min_payment_timeout_seconds: int = Field(default=60, ge=1, le=MAX_ORDER_SECONDS)
    max_payment_timeout_seconds: int = Field(default=24 * 3600, ge=1, le=MAX_ORDER_SECONDS)
    # A request body longer than this is refused (413) before it is read whole. Our
    # largest is an order of 100 lines (domain.money.MAX_ORDER_LINES): about 320 KiB
    # even with every name written in \u escapes; a notification is a few KiB.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1)

    @model_validator(mode="after")
    def _order_defaults_in_bounds(self) -> Settings:
        """The defaults an order takes must be ones a caller could have asked for."""
        _check_within(
            "auto_complete_seconds",
            self.auto_complete_seconds,
            (self.min_auto_complete_seconds, self.max_auto_complete_seconds),
        )
        _check_within(
            "default_payment_timeout_seconds",
            self.default_payment_timeout_seconds,
            (self.min_payment_timeout_seconds, self.max_payment_timeout_seconds),
        )
        return self

    @field_validator("channel_fee_rates")
    @classmethod
    def _rates_in_range(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for channel in ("alipay", "wechatpay", "card"):
            if channel not in rates:
                raise ValueError(f"no channel fee rate for {channel}")
            check_rate(rates[channel], f"channel_fee_rates[{channel}]")
        return rates

    @property
    def workflow_task_timeout(self) -> timedelta:
        return timedelta(seconds=self.workflow_task_timeout_seconds)

    @property
    def sticky_queue_timeout(self) -> timedelta:
        return timedelta(seconds=self.sticky_queue_timeout_seconds)

    @property
    def worker_shutdown_timeout(self) -> timedelta:
        return timedelta(seconds=self.worker_shutdown_seconds)


def _check_within(name: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{name} is {value}, outside the bounds set for it: {low} to {high}")


@lru_cache
def get_settings() -> Settings:
    return Settings()  # secrets come from the environment


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings as a process started with `env` would read them (PAYSAGA_A__B -> a.b), read
    without putting `env` in this process's own environment (the tests' and the bench's
    view of the processes they start)."""
    values: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("PAYSAGA_"):
            continue
        *parents, leaf = name.removeprefix("PAYSAGA_").lower().split("__")
        node = values
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return Settings(**values)
