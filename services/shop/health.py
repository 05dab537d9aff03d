"""Health as a score 0-100 with a colour level (the RabbitMQ-configuration incident's bands), from
a service's own checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

LEVELS = ((90, "green"), (70, "yellow"), (50, "orange"), (0, "red"))


def level(score: int) -> str:
    """green >= 90, yellow 70-89, orange 50-69, red < 50."""
    return next(name for floor, name in LEVELS if score >= floor)


CRITICAL_CAP = 40  # a service without a critical dependency can't do its job: red, whatever else is fine


def report(checks: dict[str, tuple[bool, int]], critical: tuple[str, ...] = ()) -> dict:
    """Each check is (ok, weight); the score is the share of weight that is ok, capped at red
    when a critical check fails."""
    total = sum(weight for _, weight in checks.values()) or 1
    score = round(100 * sum(weight for ok, weight in checks.values() if ok) / total)
    if any(not checks[name][0] for name in critical if name in checks):
        score = min(score, CRITICAL_CAP)
    return {
        "score": score,
        "level": level(score),
        "checks": {name: ok for name, (ok, _) in checks.items()},
    }


def system(services: dict[str, dict]) -> dict:
    """The system's health: as good as its weakest service, since an order needs all of them."""
    score = min((s.get("score", 0) for s in services.values()), default=0)
    return {"score": score, "level": level(score), "services": services}


class Recent:
    """An async check whose answer is reused for at most `max_age_s` after it arrived; an older
    one is checked again. Callers that come while the check runs wait for that run instead of
    starting their own, so a burst of health requests costs one check (and one log line)."""

    def __init__(self, check: Callable[[], Awaitable[bool]], max_age_s: float) -> None:
        self.check, self.max_age_s = check, max_age_s
        self._answer = False
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def __call__(self) -> bool:
        async with self._lock:
            if time.monotonic() - self._at > self.max_age_s:
                self._answer = await self.check()
                self._at = time.monotonic()
            return self._answer
