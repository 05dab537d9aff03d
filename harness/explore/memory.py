"""What exploration remembers between runs: the schedules that failed, kept in Hypothesis's
example database (a directory under the state dir), so that the next search runs them first.

They are filed by what they were found on: the system and the protections that were off. A
schedule found with `idempotency` off says nothing about the resilient shop, and one that
needs a fault the next search may not draw (`--explore-faults`) is left for a search that may.
A remembered schedule that held when it was run again is forgotten, as Hypothesis forgets an
example that no longer fails: a fixed bug leaves nothing behind to slow the next search.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hypothesis.database import DirectoryBasedExampleDatabase
from pydantic import ValidationError

from harness import state
from harness.explore.schedule import Schedule
from harness.explore.search import Exploration

FOLDER = "explore-examples"


def default_root() -> Path:
    """Beside the fault records of this checkout (or $CHAOS_STATE_DIR): never another's."""
    return state.state_dir() / FOLDER


def _encoded(schedule: Schedule) -> bytes:
    return json.dumps(schedule.model_dump(mode="json"), sort_keys=True).encode()


def drawable(schedule: Schedule, rows: Sequence[dict[str, Any]]) -> bool:
    """Whether every step is a fault and target the search may draw (harness.explore.space.explorable)."""
    targets = {row["name"]: set(row["targets"]) for row in rows}
    return all(step.target in targets.get(step.fault, ()) for step in schedule.steps)


class Memory:
    """The failing schedules of one system with one set of protections off."""

    def __init__(self, system: str, disabled: Iterable[str], root: Path | None = None) -> None:
        self.root = root or default_root()
        self.key = json.dumps({"system": system, "disabled": sorted(disabled)}, sort_keys=True).encode()
        self._db = DirectoryBasedExampleDatabase(str(self.root))

    def known(self, rows: Sequence[dict[str, Any]]) -> list[Schedule]:
        """The remembered schedules this search may draw, smallest first; an unreadable entry
        (written by another version) is dropped."""
        out = []
        for value in self._db.fetch(self.key):
            try:
                schedule = Schedule.model_validate_json(value)
            except ValidationError:
                self._db.delete(self.key, value)
                continue
            if drawable(schedule, rows):
                out.append(schedule)
        return sorted(out, key=lambda s: (s.size(), _encoded(s)))

    def update(self, exploration: Exploration) -> None:
        """Remembers each finding's smallest schedule; forgets the known ones that held."""
        for finding in exploration.findings():
            self._db.save(self.key, _encoded(finding.smallest.schedule))
        for trial in exploration.trials:
            if trial.phase == "known" and trial.anomaly is None:
                self._db.delete(self.key, _encoded(trial.schedule))
