"""A clock a unit test moves by hand (`clock.now += 20`), for code that takes its clock as a
callable: the search's budget, Retry-After's gate, the token bucket."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
