"""The sign-in throttles count in a shared store when told: API replicas behind one balancer
share one count, so a guesser cannot multiply attempts by the number of replicas.

Runs against the Redis on 127.0.0.1:6379 when one is there (every machine of ours has one).
"""

from __future__ import annotations

import secrets
import socket

import pytest

from api.auth.rate_limit import Throttle, TooManyRequests

REDIS = "redis://127.0.0.1:6379/0"


def _redis_is_there() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


def test_replicas_sharing_redis_share_one_count() -> None:
    if not _redis_is_there():
        pytest.skip("no Redis on 127.0.0.1:6379")
    replicas = [Throttle("3/minute", "100/minute", REDIS) for _ in range(2)]
    account, address = f"{secrets.token_hex(8)}@example.com", f"10.0.0.{secrets.randbelow(250)}"
    replicas[0].hit("sign-in", account, address)
    replicas[1].hit("sign-in", account, address)
    replicas[0].hit("sign-in", account, address)
    with pytest.raises(TooManyRequests) as refused:
        replicas[1].hit("sign-in", account, address)  # the fourth, on the other replica
    assert 1 <= refused.value.retry_after <= 60
    replicas[1].hit("sign-in", f"other-{account}", address)  # another account goes on


def test_replicas_counting_in_memory_each_count_their_own() -> None:
    """What the shared store is for: in memory, each replica lets three through."""
    replicas = [Throttle("3/minute", "100/minute") for _ in range(2)]
    account = f"{secrets.token_hex(8)}@example.com"
    for replica in replicas:
        for _ in range(3):
            replica.hit("sign-in", account, "10.0.0.1")
    with pytest.raises(TooManyRequests):
        replicas[0].hit("sign-in", account, "10.0.0.1")
