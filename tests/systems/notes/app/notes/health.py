"""Health as a score 0-100 and a level, from a service's dependency checks.

The levels are the broker-incident write-up's (>= 90 green, 70-89 yellow, 50-69 orange, < 50
red); the score is the share of checks that pass, so one of two dependencies lost is orange and
both lost is red.
"""

from __future__ import annotations

LEVELS = ((90, "green"), (70, "yellow"), (50, "orange"), (0, "red"))


def level(score: int) -> str:
    return next(name for floor, name in LEVELS if score >= floor)


def report(checks: dict[str, bool]) -> dict:
    """The /health body: score, level and each check's answer."""
    score = round(100 * sum(checks.values()) / len(checks)) if checks else 100
    return {"score": score, "level": level(score), "checks": dict(checks)}
