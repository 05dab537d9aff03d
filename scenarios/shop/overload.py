"""The overload of orders the traffic-shaping scenario puts on the shop, and how its answers are
read: one definition for the scenario (scenarios/test_traffic_shaping.py) and the benchmark
(tests/benchmarks/bench_shaping.py), so both measure the same thing.

The overload is a multiple of the gateway's shaping rate (services/shop/settings.py:
shaping_rate_per_s, 10/s): Locust customers each asking for OVERLOAD_RATE orders a second,
bounded in users, rate and time. Locust's users are a closed loop (a user waits for its answer),
so an unshaped shop slower than the offer makes every user's order wait in line behind the
others: latency grows with the queue. Shaped, the excess is refused at once with 429 and the
orders admitted are served at the shop's pace.
"""

from __future__ import annotations

import math

from harness.history import History, Operation
from harness.load import Load
from harness.view import StackView
from scenarios.shop.workload import customers

OVERLOAD_USERS = 20
OVERLOAD_RATE = 2.0  # orders a second per user: 40/s offered, four times the shaping rate
OVERLOAD_S = 12
ADMITTED = (201, 202)  # an order the shop took (paid, or accepted for later payment)
SHED = 429


def overload(stack: StackView, duration_s: int = OVERLOAD_S) -> Load:
    """The overload as a Load to enter (`with overload(stack) as load:`)."""
    return Load(stack, customers(stack), users=OVERLOAD_USERS, rate=OVERLOAD_RATE, duration_s=duration_s)


def admitted(history: History) -> list[Operation]:
    return [op for op in history.ops if op.status in ADMITTED]


def shed(history: History) -> list[Operation]:
    return [op for op in history.ops if op.status == SHED]


def failed(history: History) -> list[Operation]:
    """Neither admitted nor shed: an error (5xx, 4xx other than 429) or no answer at all."""
    return [op for op in history.ops if op.status not in (*ADMITTED, SHED)]


def percentile_ms(ops: list[Operation], share: float) -> float | None:
    """The latency (ms) under which `share` of the operations were answered (nearest rank);
    None for no operations, never 0: a missing figure must not read as a fast one."""
    if not ops:
        return None
    ordered = sorted(op.latency_s for op in ops)
    rank = max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))
    return round(ordered[rank] * 1000, 1)
