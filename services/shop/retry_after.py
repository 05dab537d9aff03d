"""A vendor's Retry-After, honoured by every caller of that vendor: its parsing and its gate.

A vendor that answers 429 (or 503) with Retry-After says when it will take a call again. Every
caller of that vendor (a request's retries and the settler alike) asks the vendor's one Gate
before calling, so none calls sooner: a retry that came at its own backoff would be refused
again and keep the vendor's limiter full. Once the time is up, one call goes through as a trial
while the others keep holding; its answer either opens the gate or closes it again, so callers
who were all held do not arrive at the vendor together the moment the time is up.

Only the standard library, and the clock is passed in, so the logic is unit tested as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

# The statuses whose Retry-After is honoured (RFC 9110 gives it to both).
HONOURED = frozenset({429, 503})


def parse(value: str | None, now: float, max_s: float) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (against `now`,
    epoch seconds), bounded to [0, max_s] (however long a vendor asks for, a garbled or hostile
    header must not stop settlement for a day: the gateway's retry_after_max_s). None when there
    is no usable value (absent, negative, not a number nor a date): the caller then keeps to its
    own backoff."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), max_s)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; a zone-less one is read as such
        return None
    return min(max(when.timestamp() - now, 0.0), max_s)


class Held(Exception):
    """The gate holds calls to this vendor now (the caller must not call)."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"vendor asked to wait: retry after {remaining_s:.2f}s")
        self.remaining_s = remaining_s


class Gate:
    """When one vendor may be called again, as its Retry-After answers said.

    `admit()` before a call (raises Held, or lets the call through, telling it whether it is
    the trial); `answered(...)` with every answer to an admitted call, and `failed(...)` when an
    admitted call got no answer, so a trial always ends."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.until: float | None = None  # set from a Retry-After; cleared by a trial's other answer
        self.trial = False  # the one call let through once `until` passed is on its way

    def remaining(self) -> float:
        """Seconds until the vendor takes a call again (0: now, or no Retry-After in force)."""
        return 0.0 if self.until is None else max(self.until - self.clock(), 0.0)

    def admit(self) -> bool:
        """Lets a call through (True: it is the trial after a Retry-After), or raises Held:
        before Retry-After has passed, and while the trial after it is still on its way."""
        if self.until is None:
            return False
        remaining = self.remaining()
        if remaining > 0 or self.trial:
            raise Held(remaining)
        self.trial = True
        return True

    def answered(self, status: int, wait_s: float | None, trial: bool) -> None:
        """An admitted call's answer. A Retry-After of an honoured status holds the gate for
        that long from now (the answer's arrival, never sooner than the vendor sent it), or
        longer if another answer asked for more. The trial's other answers open the gate; a call
        admitted before the gate closed opens nothing (the vendor's later word stands)."""
        if trial:
            self.trial = False
        if status in HONOURED and wait_s is not None:
            self.until = max(self.until or 0.0, self.clock() + wait_s)
        elif trial:
            self.until = None

    def failed(self, trial: bool) -> None:
        """An admitted call ended without an answer: its trial is over, the gate as it was."""
        if trial:
            self.trial = False
