"""Time-ordered facts read back from a run: retry intervals, breaker windows, recovery time.

Pure functions over journals and log events (epoch seconds), so the judging logic is unit
tested on recorded data and the scenarios only gather the data and assert.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable, TypeVar

T = TypeVar("T")


def attempts_by_key(journal: list[dict]) -> dict[str, list[float]]:
    """Arrival times of the vendor requests per idempotency key."""
    out: dict[str, list[float]] = defaultdict(list)
    for entry in journal:
        out[entry["key"]].append(entry["ts"])
    return {key: sorted(times) for key, times in out.items()}


def intervals(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times, times[1:])]


def grows(values: list[float]) -> bool:
    """Strictly increasing: what exponential backoff looks like from the callee's side."""
    return len(values) >= 2 and all(b > a for a, b in zip(values, values[1:]))


def breaker_windows(events: list[dict], until: float) -> list[tuple[float, float]]:
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


def wait_for(check: Callable[[], T], timeout_s: float, interval_s: float = 0.1) -> tuple[T, float]:
    """Polls until check() is truthy or the time runs out; returns (last value, seconds taken)."""
    began = time.monotonic()
    value = check()
    while not value and time.monotonic() - began < timeout_s:
        time.sleep(interval_s)
        value = check()
    return value, time.monotonic() - began
