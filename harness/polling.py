"""Waiting for a condition with a bound: the one poll loop scenarios and tests use instead of sleeps."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout_s: float, interval_s: float = 0.1) -> tuple[T, float]:
    """Polls until check() is truthy or the time runs out; returns (last value, seconds taken)."""
    began = time.monotonic()
    value = check()
    while not value and time.monotonic() - began < timeout_s:
        time.sleep(interval_s)
        value = check()
    return value, time.monotonic() - began
