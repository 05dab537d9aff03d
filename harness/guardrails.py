"""Guardrails: stop conditions that heal every fault when the system falls too far.

A game day must not turn into an outage. `--abort-if "health<50"` (on `chaos inject` and on
pytest) names a condition over the health probe's samples; while faults are active, the
condition is checked on every sample, and once it has held for its hold time (``for 5s``,
default at once) every fault is healed and the trip is recorded: in the run's fault journal
for game days, in the scenario's report (and as a failed verdict) for pytest.

    health<50            the system's health score (an unreachable edge counts as 0)
    health<=40 for 5s    held for five seconds first
    disk>=95             node-A's disk use, percent

The CLI's watcher runs detached (``python -m harness.guardrails watch RUN CONDITION``), like
the `--for` healer: it outlives the command that injected the fault and ends, bounded, when
the run has no active fault left.
"""

from __future__ import annotations

import operator
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from harness.errors import HarnessError
from harness.probes import Sample

METRICS: dict[str, Callable[[Sample], float | None]] = {
    # An edge that does not answer is as bad as it gets: a monitor counts it as down.
    "health": lambda s: float(s["score"]) if s["score"] is not None else 0.0,
    "disk": lambda s: s["disk_used_percent"],
}
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
SYNTAX = re.compile(r"^\s*(?P<metric>[a-z_]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>-?\d+(?:\.\d+)?)"
                    r"(?:\s+for\s+(?P<hold>\d+(?:\.\d+)?)\s*s)?\s*$")
MAX_HOLD_S = 3600.0
WATCH_HZ = 5.0
MAX_WATCH_S = 86400.0  # a watcher ends by then whatever happens (the longest --for)


@dataclass(frozen=True)
class Condition:
    """A parsed stop condition, e.g. ``health<50 for 5s``."""

    text: str
    metric: str
    op: str
    threshold: float
    hold_s: float = 0.0

    def value(self, sample: Sample) -> float | None:
        return METRICS[self.metric](sample)

    def holds(self, sample: Sample) -> bool:
        observed = self.value(sample)
        return observed is not None and OPERATORS[self.op](observed, self.threshold)


def parse(text: str) -> Condition:
    """The condition a person wrote, or one line saying how to write it."""
    found = SYNTAX.match(text or "")
    hint = (f"write METRIC OP NUMBER [for SECONDSs], e.g. \"health<50\" or \"health<50 for 5s\"; "
            f"METRIC is one of {', '.join(METRICS)}, OP one of {' '.join(OPERATORS)}")
    if not found:
        raise HarnessError(f"bad guardrail {text!r}: {hint}")
    if found["metric"] not in METRICS:
        raise HarnessError(f"bad guardrail {text!r}: unknown metric {found['metric']!r}; {hint}")
    hold = float(found["hold"] or 0)
    if hold > MAX_HOLD_S:
        raise HarnessError(f"bad guardrail {text!r}: hold at most {MAX_HOLD_S:.0f}s")
    return Condition(" ".join(text.split()), found["metric"], found["op"], float(found["value"]), hold)


class Guardrail:
    """Trips once, when the condition has held on consecutive samples for its hold time.

    Feed it samples only while faults are active (``reset`` otherwise): a stop condition is
    about what the faults do, not about a stack that was unhealthy before anything began.
    """

    def __init__(self, condition: Condition, on_trip: Callable[[dict[str, Any]], None]) -> None:
        self.condition, self.on_trip = condition, on_trip
        self.since: float | None = None
        self.trip: dict[str, Any] | None = None

    def reset(self) -> None:
        self.since = None

    def feed(self, sample: Sample) -> bool:
        """Whether this sample tripped the guardrail (after which it stays quiet)."""
        if self.trip is not None:
            return False
        if not self.condition.holds(sample):
            self.since = None
            return False
        self.since = sample["ts"] if self.since is None else self.since
        if sample["ts"] - self.since < self.condition.hold_s:
            return False
        self.trip = {"condition": self.condition.text, "ts": sample["ts"], "held_since": self.since,
                     "observed": self.condition.value(sample), "level": sample["level"]}
        self.on_trip(self.trip)
        return True


def reason(trip: dict[str, Any]) -> str:
    """A trip as a verdict's reason (a scenario's or a game day's)."""
    return (f"[guardrail] {trip['condition']} held while faults were active (observed {trip['observed']}); "
            f"healed {', '.join(trip.get('healed', [])) or 'nothing'}")


# ---------------------------------------------------------------- the CLI's detached watcher

def watch(run_id: str, text: str, max_s: float = MAX_WATCH_S) -> dict[str, Any] | None:
    """Watches a run's health while it has active faults; on a trip heals them all and writes
    an ``abort`` entry to the run's journal. Returns the trip, or None when the faults ended
    first."""
    from harness.faults import registry
    from harness.faults.attach import attach
    from harness.probes import HEALTH_PATH, every

    condition = parse(text)
    url = attach(run_id).edge_url + HEALTH_PATH

    def heal_run(trip: dict[str, Any]) -> None:
        pending = [r for r in registry.records() if r.run_id == run_id]
        trip["healed"] = [r.id for r in pending]
        try:
            registry.heal_all(pending)
        finally:
            registry.append_journal(run_id, {"ts": time.time(), "action": "abort", **trip})

    guard = Guardrail(condition, heal_run)
    for sample in every(url, WATCH_HZ, max_s):
        if not any(r.run_id == run_id for r in registry.records()):
            return None  # nothing left to guard
        if guard.feed(sample):
            return guard.trip
    return None


def main(argv: list[str]) -> int:
    from harness.faults.registry import detached_main

    return detached_main(argv, "watch", "python -m harness.guardrails watch RUN_ID CONDITION", watch)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
