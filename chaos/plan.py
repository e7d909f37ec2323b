"""The run's plan, drawn from its seed: each order's scenario and the kill schedule.

Pure: the same seed gives the same plan, so a failing run can be run again as it was
(the timing of the processes still varies; the plan does not).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

CHANNELS = ("alipay", "wechatpay", "card")
# What the run kills, and how often each is drawn (the worker and the API most often:
# they are the processes that get deployed many times a day).
KILL_WEIGHTS = {"worker": 4, "api": 3, "sandbox": 2, "temporal": 2, "postgres": 2}
# With several workers, one is also paused now and then (SIGSTOP, then SIGCONT), as by a
# long garbage collection or a frozen VM: its workflow tasks time out and another worker
# replays them while its own tries are still to run their writes when it wakes.
PAUSE = "pause"
PAUSE_WEIGHT = 3
PAUSE_S = (2.5, 6.0)  # past the run's 2 s workflow-task timeout, so its tasks move on


class Scenario(enum.StrEnum):
    PAY = "pay"  # the buyer pays; the notification may be duplicated, delayed or dropped
    DECLINE = "decline"  # the channel declines the payment
    TIMEOUT = "timeout"  # nobody pays: the payment window closes the order
    CANCEL = "cancel"  # cancelled before payment
    CANCEL_RACING_PAY = "cancel_racing_pay"  # a cancel and a payment at the same moment
    LATE_PAY = "late_pay"  # paid after the window closed: the money must go back
    REFUND_RACE = "refund_race"  # paid, then two refunds that cannot both fit, each sent twice


# Of a hundred orders, how many play each scenario.
SCENARIO_WEIGHTS = {
    Scenario.PAY: 34,
    Scenario.DECLINE: 10,
    Scenario.TIMEOUT: 10,
    Scenario.CANCEL: 10,
    Scenario.CANCEL_RACING_PAY: 12,
    Scenario.LATE_PAY: 8,
    Scenario.REFUND_RACE: 16,
}
NOTIFY_MODES = {"normal": 4, "duplicate": 2, "delay": 2, "drop": 2}


@dataclass(frozen=True)
class OrderPlan:
    number: int
    scenario: Scenario
    channel: str
    notify: str  # how the sandbox delivers the payment's notification
    start_at_s: float  # when in the faulty phase the order is placed


@dataclass(frozen=True)
class Kill:
    at_s: float
    target: str  # a process ("worker-2" is the second worker), or "postgres"
    down_s: float  # how long it stays dead before the restart (or paused)
    pause: bool = False  # stopped and let go on, not killed and started again


def _pick(rng: random.Random, weights: dict[str, int] | dict[Scenario, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def order_plans(orders: int, seconds: float, seed: int) -> list[OrderPlan]:
    """`orders` orders spread evenly over the faulty phase, scenarios and channels drawn."""
    rng = random.Random(f"orders-{seed}")
    return [
        OrderPlan(
            number=n,
            scenario=Scenario(_pick(rng, SCENARIO_WEIGHTS)),
            channel=CHANNELS[n % len(CHANNELS)],
            notify=_pick(rng, NOTIFY_MODES),
            start_at_s=seconds * n / orders,
        )
        for n in range(orders)
    ]


def kill_schedule(
    seconds: float, seed: int, every_s: tuple[float, float], workers: int = 1
) -> list[Kill]:
    """Kills at drawn intervals through the faulty phase; every target at least once when
    the phase is long enough, so a short run still crashes each process. With several
    workers, a worker's kill or pause falls on one of them, drawn; one worker draws what
    it always drew, so a seed's run stays the same."""
    rng = random.Random(f"kills-{seed}")
    weights = dict(KILL_WEIGHTS, **({PAUSE: PAUSE_WEIGHT} if workers > 1 else {}))
    targets = list(weights)
    rng.shuffle(targets)
    kills: list[Kill] = []
    at_s = rng.uniform(*every_s) / 2
    while at_s < seconds:
        target = targets.pop() if targets else _pick(rng, weights)
        if target == PAUSE:
            kills.append(_pause(rng, at_s, workers))
        else:
            down_s = round(rng.uniform(0.2, 3), 2)
            if target == "worker" and workers > 1:
                target = worker_name(rng.randrange(workers))
            kills.append(Kill(at_s=round(at_s, 2), target=target, down_s=down_s))
        at_s += rng.uniform(*every_s)
    return kills


def _pause(rng: random.Random, at_s: float, workers: int) -> Kill:
    down_s = round(rng.uniform(*PAUSE_S), 2)
    return Kill(round(at_s, 2), worker_name(rng.randrange(workers)), down_s, pause=True)


def worker_name(index: int) -> str:
    """The run's workers: "worker", then "worker-2", "worker-3", ..."""
    return "worker" if index == 0 else f"worker-{index + 1}"
