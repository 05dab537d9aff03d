"""Retry and breaker judgements over what the callee saw: attempts per key, their intervals,
whether they back off, whether they kept to the callee's Retry-After, when a circuit breaker was open.

Pure functions over the vendor's recorded attempts and the shop's log events (epoch seconds), so
the judging logic is unit tested on recorded data and the scenarios only gather the data and assert.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def attempts_by_key(attempts: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Arrival times of the vendor requests per idempotency key."""
    out: dict[str, list[float]] = defaultdict(list)
    for entry in attempts:
        out[entry["key"]].append(entry["ts"])
    return {key: sorted(times) for key, times in out.items()}


def intervals(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times, times[1:])]


CLOCK_SLACK_S = 0.005  # how far apart two stamps of one instant may read (timer and clock granularity)


def backoff_floors(count: int, initial_s: float, max_s: float) -> list[float]:
    """The waits an exponential backoff owes before each of `count` retries: initial_s,
    doubling, capped at max_s."""
    return [min(initial_s * 2 ** k, max_s) for k in range(count)]


def backs_off(values: list[float], initial_s: float, max_s: float, slack_s: float = CLOCK_SLACK_S) -> bool:
    """Exponential backoff as the callee sees it: at least two intervals between attempts, each
    at least the wait the backoff owes before that retry (backoff_floors).

    Judged by those floors alone, because they are what the caller guarantees whatever the
    machine's load: a retry can't reach the callee sooner than its wait after the attempt before
    (that attempt arrived, was answered, then the wait began), while load can deliver it any
    amount later. A ratio between successive intervals can't be held to on a loaded machine
    (0.1 s stretched to 0.18 s, then 0.2 s to 0.21 s, reads as no growth); the floors still tell
    retries sent back to back (milliseconds apart), a fixed delay (0.1 s each) and a linear one
    (0.1, 0.2, 0.3 s) from a backoff that doubles."""
    return len(values) >= 2 and all(
        value + slack_s >= floor for value, floor in zip(values, backoff_floors(len(values), initial_s, max_s)))


def early_calls(attempts: list[dict[str, Any]], slack_s: float = CLOCK_SLACK_S) -> list[dict[str, Any]]:
    """The attempts that reached the callee before a Retry-After it had given had passed: an
    answer at `ts` with `retry_after_s` asks every caller to wait that long, so any later
    attempt (any key: the wait is the callee's, not one order's) arriving sooner is early.

    Measured from the callee's own arrival times: an attempt arrives, is answered, the caller
    reads the answer and only then starts to wait, so a caller that honours the wait can only
    arrive later than `ts + retry_after_s`, however loaded the machine is."""
    early, until = [], float("-inf")
    for entry in sorted(attempts, key=lambda e: e["ts"]):
        if entry["ts"] + slack_s < until:
            early.append(entry)
        if entry.get("retry_after_s") is not None:
            until = max(until, entry["ts"] + entry["retry_after_s"])
    return early


def breaker_windows(events: list[dict[str, Any]], until: float) -> list[tuple[float, float]]:
    """(opened, left-open) intervals from breaker_state_changed events; one still open ends at until."""
    windows, opened = [], None
    for event in sorted(events, key=lambda e: e["ts"]):
        if event.get("event") != "breaker_state_changed":
            continue
        if event.get("state") == "opened" and opened is None:
            opened = event["ts"]
        elif event.get("state") != "opened" and opened is not None:
            windows.append((opened, event["ts"]))
            opened = None
    if opened is not None:
        windows.append((opened, until))
    return windows


def inside(ts: float, windows: list[tuple[float, float]], margin: float = 0.0) -> bool:
    return any(start + margin < ts < end - margin for start, end in windows)
