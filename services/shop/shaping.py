"""Traffic shaping at the gateway (the manual's first response 5: limit traffic at the API
gateway when it is overloaded): a token bucket that admits order writes up to a configured
rate, with a burst on top, and tells the rest when to come back.

The shop's own small bucket: none of the shop's locked dependencies has one, and a refill
computed from a monotonic clock is a few lines, kept pure here (the clock is passed in) so its
arithmetic is unit tested without a gateway. One bucket for the whole gateway: what it protects
is the shop's capacity, not one customer's share of it. Only the standard library.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second flow into a bucket that holds at most `burst`; a request takes one
    or is shed. Starts full, so a quiet shop takes a burst at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not {rate} and {burst}")
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now

    def take(self) -> float | None:
        """None when a token was taken (admitted); else the seconds until the next token, the
        Retry-After of the refusal."""
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


def retry_after(wait_s: float) -> str:
    """The Retry-After header for a wait: whole seconds (as HTTP has it), never less than 1, so
    a shed client does not come straight back in the same second."""
    return str(max(1, math.ceil(wait_s)))
