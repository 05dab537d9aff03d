"""Health as a score 0-100 with a colour level (seed 003), from a service's own checks."""

from __future__ import annotations

LEVELS = ((90, "green"), (70, "yellow"), (50, "orange"), (0, "red"))


def level(score: int) -> str:
    """green >= 90, yellow 70-89, orange 50-69, red < 50."""
    return next(name for floor, name in LEVELS if score >= floor)


def report(checks: dict[str, tuple[bool, int]]) -> dict:
    """Each check is (ok, weight); the score is the share of weight that is ok."""
    total = sum(weight for _, weight in checks.values()) or 1
    score = round(100 * sum(weight for ok, weight in checks.values() if ok) / total)
    return {
        "score": score,
        "level": level(score),
        "checks": {name: ok for name, (ok, _) in checks.items()},
    }
