"""Guardrails: stop conditions that heal every fault when the system falls too far.

A game day must not turn into an outage. `--abort-if "health<50"` (on `chaos inject` and on
pytest) names a condition over the health probe's samples; while faults are active, the
condition is checked on every sample, and once it has held for its hold time (``for 5s``,
default at once) every fault is healed and the trip is recorded: in the run's fault journal
for game days, in the scenario's report (and as a failed verdict) for pytest.

    health<50            the system's health score (an unreachable edge counts as 0)
    health<=40 for 5s    held for five seconds first
    disk>=95             the disk use a service's health reports, percent

The CLI's watcher runs detached (``python -m harness.guardrails watch RUN``), like the `--for`
healer: it outlives the command that injected the fault and ends, bounded, when the run has no
active fault left. A run has one watcher at most: a second `--abort-if` adds its condition to
the running one (see ``guard``).
"""

from __future__ import annotations

import contextlib
import json
import operator
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from harness import detached, run_ids, state
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
#
# One watcher per run, however many `chaos inject --abort-if` there were: the run's watcher file
# (guardrails/<run id>.json in the state directory) lists its conditions and names the live
# watcher (pid:starttime). `guard` adds a condition and starts a watcher only when none is alive;
# the watcher reads the file on every sample, so a condition added later is watched from then on.
# Both sides hold the run's lock file while they read or change the file, and the watcher
# decides to end (no active fault left) under it: an inject that added its condition found
# either the watcher still going, or no watcher and started one.

WATCHERS = "guardrails"
MAX_CONDITIONS = 16  # per run: a game day has a few stop conditions, not an unbounded list


def watcher_path(run_id: str, root: Path | None = None) -> Path:
    return (root or state.state_dir()) / WATCHERS / f"{run_ids.valid(run_id)}.json"


@contextlib.contextmanager
def _locked(run_id: str, root: Path | None = None) -> Iterator[Path]:
    """The run's watcher file, with the run's lock held (released on exit, also by a kill)."""
    with state.locked(watcher_path(run_id, root)) as path:
        yield path


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {"watcher": document.get("watcher"), "conditions": list(document.get("conditions", []))}
    except (OSError, ValueError, AttributeError):
        return {"watcher": None, "conditions": []}


def guard(run_id: str, condition: Condition, root: Path | None = None) -> bool:
    """Adds the condition to the run's watcher, starting the watcher (detached) when none is
    alive. Returns whether one was started."""
    from harness.ownership import owner_alive, owner_token

    with _locked(run_id, root) as path:
        document = _read(path)
        if condition.text not in document["conditions"]:
            if len(document["conditions"]) >= MAX_CONDITIONS:
                raise HarnessError(f"run {run_id} already has {MAX_CONDITIONS} guardrails: "
                                   "`chaos heal --all` ends them with the faults")
            document["conditions"].append(condition.text)
        started = not (document["watcher"] and owner_alive(document["watcher"]))
        if started:
            document["watcher"] = owner_token(detached.spawn_detached("harness.guardrails", "watch", run_id, root=root))
        state.write_whole(path, json.dumps(document))
    return started


def watch(run_id: str, max_s: float = MAX_WATCH_S) -> list[dict[str, Any]]:
    """Watches a run's health while it has active faults, against every condition its watcher
    file lists (read again on every sample); on a trip heals them all and writes an ``abort``
    entry to the run's journal. Ends, leaving no watcher file, when the run has no active fault
    (or at max_s); ends at once when another watcher is the run's. Returns the trips."""
    from harness.faults import registry
    from harness.faults.attach import attach
    from harness.ownership import owner_token
    from harness.probes import every, health_of

    me = owner_token()
    health = health_of(attach(run_id), timeout_s=1.0)

    def heal_run(trip: dict[str, Any]) -> None:
        pending = [r for r in state.records() if r.run_id == run_id]
        trip["healed"] = [r.id for r in pending]
        # Journalled before healing: whoever waits for the faults to end then finds the abort.
        state.append_journal(run_id, {"ts": time.time(), "action": "abort", **trip})
        registry.heal_all(pending)

    guards: dict[str, Guardrail] = {}
    trips: list[dict[str, Any]] = []
    with health:
        for sample in every(health, WATCH_HZ, max_s):
            with _locked(run_id) as path:
                document = _read(path)
                if document["watcher"] != me:
                    return trips  # the run's watcher is another one now
                if not any(r.run_id == run_id for r in state.records()):
                    path.unlink(missing_ok=True)
                    return trips  # nothing left to guard
                for text in document["conditions"]:
                    guards.setdefault(text, Guardrail(parse(text), heal_run))
            for text, guardrail in list(guards.items()):
                if guardrail.feed(sample):
                    assert guardrail.trip is not None  # feed answers True once it has set the trip
                    trips.append(guardrail.trip)
                    guards[text] = Guardrail(guardrail.condition, heal_run)  # armed again for faults still to come
    with _locked(run_id) as path:
        if _read(path)["watcher"] == me:
            path.unlink(missing_ok=True)
    return trips


def main(argv: list[str]) -> int:
    return detached.detached_main(argv, "watch", "python -m harness.guardrails watch RUN_ID", watch)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
