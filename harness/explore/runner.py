"""One schedule on a real stack: the system's workload runs throughout, each step is injected
at its offset and healed at its end, then everything is healed, the system is given a bounded
time to come back to green, and the system's own judge reads the outcome from the outside.

What the harness judges itself, whatever the system: health back to green within the recovery
budget after the last heal (`no_recovery`), and no fault of the run left behind (`fault_left`).
A step the harness could not inject (its proof did not land, the target was restarting) is a
note, not a failure: the schedule still ran, with that step missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from harness import state
from harness.errors import HarnessError
from harness.explore.schedule import MAX_SPAN_S, Schedule
from harness.explore.search import UNJUDGED, Judgement
from harness.faults import Chaos
from harness.faults.base import Fault
from harness.status import wait_green
from harness.view import StackView

LEAD_S = 1.0  # the workload runs this long before the first step: a baseline in the same history
RECOVERY_S = 20.0  # after the last heal, health must be green again within this long
HARNESS_ANOMALIES = ("no_recovery", "fault_left", UNJUDGED)


class System(Protocol):
    """What exploration asks of the system under test (the shop's: scenarios/shop/explore.py)."""

    #: where a scenario module finds this object again: "package.module:NAME"
    import_path: str
    #: the services whose records the judge reads: exploration never kills or restarts them
    witnesses: Sequence[str]
    #: the system's anomaly classes in its checker's order (a schedule showing several is
    #: filed under the first); the harness's own come after them.
    anomaly_order: Sequence[str]

    def workload(self, stack: StackView, seed: int) -> AbstractContextManager[Any]:
        """Runs a steady workload while the block lasts; what it yields is handed to judge."""
        ...

    def judge(self, stack: StackView, work: Any) -> Mapping[str, str]:
        """Anomaly class -> one line of evidence, read from the outside once the system settled."""
        ...


def _sleep_until(deadline: float) -> None:
    """The schedule's clock: a step starts at its offset (bounded by the schedule's span)."""
    time.sleep(max(0.0, min(deadline - time.monotonic(), MAX_SPAN_S)))


def _steps_run(stack: StackView, schedule: Schedule, injector: Chaos, notes: list[str]) -> Iterator[str]:
    """Injects and heals each step at its time; yields each fault as it lands."""
    live: dict[int, Fault] = {}
    began = time.monotonic()
    for offset, action, index in schedule.events():
        _sleep_until(began + offset)
        step = schedule.steps[index]
        if action == "inject":
            try:
                live[index] = injector.inject(step.fault, step.target, **step.params)
                yield str(step)
            except HarnessError as exc:
                notes.append(f"step {index + 1} not injected: {exc}")
        elif index in live:
            try:
                live.pop(index).heal()
            except HarnessError as exc:
                notes.append(f"step {index + 1} heal: {exc}")


def run(stack: StackView, schedule: Schedule, system: System, seed: int, injector: Chaos | None = None,
        recovery_s: float = RECOVERY_S) -> Judgement:
    """Runs one schedule and judges it (see the module's doc). With the `chaos` fixture's
    injector, its steps are in the scenario's fault journal: the report draws them as bands."""
    injector = injector or Chaos(stack)
    first_entry = len(injector.journal.entries)
    notes: list[str] = []
    anomalies: dict[str, str] = {}
    with system.workload(stack, seed) as work:
        time.sleep(LEAD_S)
        try:
            landed = list(_steps_run(stack, schedule, injector, notes))
        finally:
            try:
                injector.heal_all()
            except HarnessError as exc:
                anomalies["fault_left"] = str(exc)
        healed_at = time.monotonic()
        try:
            wait_green(lambda: stack, recovery_s, f"run {stack.run_id}")
            recovered_s: float | None = round(time.monotonic() - healed_at, 2)
        except HarnessError:
            recovered_s = None
            anomalies["no_recovery"] = f"health not green {recovery_s:.0f}s after the last heal"
    left = [r.id for r in state.records() if r.run_id == stack.run_id]
    if left:
        anomalies.setdefault("fault_left", f"fault records left after healing: {', '.join(left)}")
    anomalies = {**system.judge(stack, work), **anomalies}
    return Judgement(anomalies, tuple(notes), {"landed": landed, "recovered_s": recovered_s,
                                                "journal": injector.journal.entries[first_entry:]})
