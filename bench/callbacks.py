"""The callback endpoint under a storm: genuine duplicates of paid orders' notifications and
forgeries of them (one byte of a signed field changed), mixed, sent open loop at a fixed
rate to our notify route on loopback. Each request leaves at its scheduled moment whether
or not earlier ones have been answered, so a slow answer cannot slow the storm down.

An error is anything but the answer a channel expects: a genuine duplicate acknowledged
(2xx), a forgery refused (4xx); a 5xx, a timeout or a broken connection is one too.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from bench.figures import percentile

# A channel's message as it arrives: body, headers, and whether it is the channel's own.
Message = tuple[bytes, dict[str, str], bool]


@dataclass
class StormFigures:
    rate: float  # asked for, requests/s
    seconds: float
    sent: int = 0
    errors: int = 0
    answers: dict[int, int] = field(default_factory=dict)  # status -> count
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, object]:
        return {
            "rate": self.rate,
            "achieved_rate": self.sent / self.elapsed_s if self.elapsed_s else 0.0,
            "sent": self.sent,
            "errors": self.errors,
            "answers": self.answers,
            "p50_ms": percentile(self.latencies_s, 0.5) * 1000,
            "p99_ms": percentile(self.latencies_s, 0.99) * 1000,
        }


def forged(message: Message, field_name: bytes = b"total_amount=") -> Message:
    """The same message with the first digit of a signed field changed: a forgery whose
    signature no longer matches."""
    body, headers, _ = message
    at = body.index(field_name) + len(field_name)
    digit = body[at : at + 1]
    other = b"1" if digit != b"1" else b"2"
    return body[:at] + other + body[at + 1 :], headers, False


async def storm(
    api: httpx.AsyncClient, path: str, messages: list[Message], rate: float, seconds: float
) -> StormFigures:
    """Send `messages` in turn, `rate` a second for `seconds`, and time each answer."""
    figures = StormFigures(rate=rate, seconds=seconds)
    count = max(1, int(rate * seconds))
    start = time.perf_counter()

    async def one(number: int) -> None:
        body, headers, genuine = messages[number % len(messages)]
        sent = time.perf_counter()
        try:
            answer = await api.post(path, content=body, headers=headers)
        except httpx.HTTPError:
            figures.errors += 1
            return
        figures.latencies_s.append(time.perf_counter() - sent)
        status = answer.status_code
        figures.answers[status] = figures.answers.get(status, 0) + 1
        expected = 200 <= status < 300 if genuine else 400 <= status < 500
        figures.errors += 0 if expected else 1

    tasks = []
    for number in range(count):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule, not a wait for state
        tasks.append(asyncio.create_task(one(number)))
    await asyncio.gather(*tasks)
    figures.sent = count
    figures.elapsed_s = time.perf_counter() - start
    return figures
