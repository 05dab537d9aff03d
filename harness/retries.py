"""Retry and breaker judgements over what the callee saw: attempts per key, their intervals,
whether they back off, when a circuit breaker was open.

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


BACKOFF_RATIO = 1.5  # exponential backoff doubles; a ratio this far above 1 tells it from a flat retry loop
BACKOFF_JITTER_S = 0.05  # the shop's retry jitter (services/shop/settings.py: retry_jitter_s)


def grows(values: list[float], ratio: float = BACKOFF_RATIO, jitter_s: float = BACKOFF_JITTER_S) -> bool:
    """Exponential backoff as the callee sees it: at least two intervals, each at least `ratio`
    times the one before, allowing `jitter_s` of absolute jitter (later + jitter_s >= ratio *
    earlier). Merely increasing is not enough: a fixed delay plus noise (0.20, 0.21, 0.23) also
    increases. And the growth must be larger than the jitter: retries sent back to back (a few
    milliseconds apart, all "within jitter" of each other) do not back off. A backoff that has
    reached its cap stops growing, so callers judge the intervals below the cap (the shop's 4
    attempts from 0.1 s never reach its 1.0 s cap)."""
    return (len(values) >= 2 and values[-1] - values[0] > jitter_s
            and all(later + jitter_s >= ratio * earlier for earlier, later in zip(values, values[1:])))


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
