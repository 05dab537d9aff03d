"""The overload of orders the traffic-shaping scenario puts on the shop, the traffic limit an
operator sets against it, and how its answers are read: one definition for the scenario
(scenarios/test_traffic_shaping.py) and the benchmark (tests/benchmarks/bench_shaping.py), so
both measure the same thing.

The manual's first response 5 is to limit traffic at the gateway for a while when it is
overloaded: `limited(stack)` sets the gateway's order-write bucket to LIMIT_RATE_PER_S (burst
LIMIT_BURST) through its control endpoint and always lifts it again (back to the settings'
guard rail). The overload is six times that limit: Locust customers each asking for
OVERLOAD_RATE orders a second, bounded in users, rate and time. Locust's users are a closed
loop (a user waits for its answer), so an unshaped shop slower than the offer makes every
user's order wait in line behind the others: latency grows with the queue. Shaped, the excess
is refused at once with 429 and the orders admitted are served at the shop's pace.

`arrivals` is the open loop: orders sent at a fixed rate whatever the answers, as customers
arrive at a real shop. There the queue of an unshaped shop slower than the offer has no bound
but the run's length: each second adds to it, and the admitted latency grows with the time
into the run (`by_thirds` reads it), where the closed loop's grows only with the load offered.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from harness.errors import HarnessError
from harness.history import History, Operation
from harness.load import Load
from harness.topology import control_headers
from harness.view import StackView
from scenarios.shop.workload import customers

SHAPING_PATH = "/_control/shaping"
LIMIT_RATE_PER_S, LIMIT_BURST = 5.0, 5  # inside what the shop serves even on 2 busy shared cores
OVERLOAD_USERS = 16
OVERLOAD_RATE = 2.0  # orders a second per user: 32/s offered, six times the limit
OVERLOAD_S = 12
MAX_ARRIVALS = 5000  # the open loop's bound in orders, whatever rate and time it is asked for
ARRIVAL_TIMEOUT_S = 30.0  # one arrival's patience: past it the order is unknown (and counted as failed)
ADMITTED = (201, 202)  # an order the shop took (paid, or accepted for later payment)
SHED = 429


@contextmanager
def limited(stack: StackView, rate_per_s: float = LIMIT_RATE_PER_S, burst: int = LIMIT_BURST) -> Iterator[None]:
    """The gateway admits order writes at `rate_per_s` (burst `burst`) inside the block, and at
    its settings' rate again after it, whatever happened inside (the limit always lifts)."""
    url, headers = f"{stack.endpoint('api_gateway').url}{SHAPING_PATH}", control_headers(stack.control_secret)
    response = httpx.put(url, json={"rate_per_s": rate_per_s, "burst": burst}, headers=headers, timeout=10)
    if response.status_code != 200:
        raise HarnessError(f"api_gateway refused the traffic limit: {response.status_code} {response.text[:200]}")
    try:
        yield
    finally:
        httpx.delete(url, headers=headers, timeout=10).raise_for_status()


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


async def _arrive(http: httpx.AsyncClient, history: History, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    op = history.invoke("place_order", uuid.uuid4().hex, {"sku": "sku-1", "amount_cents": 1250})
    try:
        response = await http.post("/orders", json=op.request, headers={"Idempotency-Key": op.key})
    except httpx.HTTPError as exc:
        history.complete(op, "unknown", None, {"error": type(exc).__name__})
        return
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    history.complete(op, "ok" if response.status_code < 300 else "fail", response.status_code, body)


def arrivals(stack: StackView, token: str, rate_per_s: float, seconds: float) -> History:
    """Orders sent at `rate_per_s` for `seconds` through the edge (127.0.0.1), each on its own
    schedule whatever the answers (an open loop), at most MAX_ARRIVALS; returns their history
    once every one is answered or has timed out."""
    count = min(MAX_ARRIVALS, max(1, round(rate_per_s * seconds)))
    history = History()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=stack.edge_url, timeout=ARRIVAL_TIMEOUT_S,
                                     headers={"Authorization": f"Bearer {token}"},
                                     limits=httpx.Limits(max_connections=None, max_keepalive_connections=50)) as http:
            began = time.monotonic()
            await asyncio.gather(*(_arrive(http, history, began + n / rate_per_s) for n in range(count)))
    asyncio.run(run())
    return history


def by_thirds(history: History, share: float = 0.99) -> list[float | None]:
    """The admitted orders' latency percentile for each third of the run, by when they were sent."""
    ops = sorted(history.ops, key=lambda op: op.invoked)
    if not ops:
        return [None, None, None]
    began, span = ops[0].invoked, max(1e-9, ops[-1].invoked - ops[0].invoked)
    thirds: list[list[Operation]] = [[], [], []]
    for op in ops:
        thirds[min(2, int(3 * (op.invoked - began) / span))].append(op)
    return [percentile_ms([op for op in third if op.status in ADMITTED], share) for third in thirds]
