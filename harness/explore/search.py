"""The search: Hypothesis draws schedules, a judge runs each on the system and names what went
wrong, and a failing schedule is shrunk to the smallest that still fails for the same anomaly
class.

Each anomaly class is raised as its own exception type, so Hypothesis (with multiple-bug
reporting on) shrinks each class apart and never slips from one to another. The budget bounds
the whole search: past it, a schedule not judged before counts as passing, which ends
generation and lets the shrinker stop at the smallest failure it has. Judgements are kept by
schedule, so Hypothesis's closing replay of a finding, or a schedule drawn twice, is answered
from what was seen rather than run again.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.errors import HypothesisException

from harness.explore.schedule import Schedule

MAX_EXAMPLES = 500  # far above what a budget of minutes runs; past the budget each is a no-op


@dataclass(frozen=True)
class Judgement:
    """What the judge saw after one schedule: anomaly class -> one line of evidence (none: it
    held), and notes that are not failures (a step that could not be injected, say)."""

    anomalies: Mapping[str, str] = field(default_factory=dict)
    notes: Sequence[str] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def first(self, order: Sequence[str]) -> str | None:
        """The anomaly a failing schedule is filed under: the first in the checker's order."""
        ranked = sorted(self.anomalies, key=lambda name: (order.index(name) if name in order else len(order), name))
        return ranked[0] if ranked else None


Judge = Callable[[Schedule], Judgement]


@dataclass(frozen=True)
class Trial:
    """One schedule run: when it ended (seconds into the search), what was found."""

    index: int
    schedule: Schedule
    anomaly: str | None
    judgement: Judgement
    ended_s: float
    took_s: float


@dataclass(frozen=True)
class Finding:
    """One anomaly class: the first schedule that showed it, the smallest, and the steps between."""

    anomaly: str
    first: Trial
    smallest: Trial
    shrinks: tuple[Trial, ...]  # every failing trial of this class, in the order run


@dataclass
class Exploration:
    seed: int
    budget_s: float
    trials: list[Trial] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: str = "searched"  # "searched" (Hypothesis ran its course) or "budget"

    def findings(self) -> list[Finding]:
        """One per anomaly class seen, in the order first seen; the smallest is the least by
        Schedule.size (steps, fault time, span), the latest of equals (the shrinker's last word
        on its parameters)."""
        by_class: dict[str, list[Trial]] = {}
        for trial in self.trials:
            if trial.anomaly is not None:
                by_class.setdefault(trial.anomaly, []).append(trial)
        return [Finding(name, seen[0], min(seen, key=lambda t: (t.schedule.size(), -t.index)), tuple(seen))
                for name, seen in by_class.items()]


class ScheduleFailed(Exception):
    """A schedule showed an anomaly; one subclass per anomaly class (see failure_type)."""

    anomaly = ""


@functools.cache
def failure_type(anomaly: str) -> type[ScheduleFailed]:
    return type(f"Found_{anomaly}", (ScheduleFailed,), {"anomaly": anomaly})


def _key(schedule: Schedule) -> str:
    return json.dumps(schedule.model_dump(mode="json"), sort_keys=True)


def _pairs(schedule: Schedule) -> frozenset[tuple[str, str]]:
    return frozenset((step.fault, step.target) for step in schedule.steps)


def within_a_failure(schedule: Schedule, failures: Sequence[Schedule]) -> bool:
    """Whether a candidate only keeps, shortens or turns down steps of a schedule that failed.

    Once a failure is seen, only such candidates are run: Hypothesis's shrinker also tries
    other faults and targets (they are earlier choices), and on a real system each of those is
    a schedule run that tells nothing about the failure being shrunk."""
    return any(_pairs(schedule) <= _pairs(failed) for failed in failures)


def explore(judge: Judge, strategy: st.SearchStrategy[Schedule], *, seed: int, budget_s: float,
            order: Sequence[str] = (), on_trial: Callable[[Trial], None] | None = None,
            clock: Callable[[], float] = time.monotonic, max_examples: int = MAX_EXAMPLES) -> Exploration:
    """Searches for schedules that fail, within budget_s, from a fixed seed. `order` ranks the
    anomaly classes (the checker's): a schedule showing several is filed under the first."""
    result = Exploration(seed=seed, budget_s=budget_s)
    began = clock()
    seen: dict[str, Trial] = {}
    failures: list[Schedule] = []

    def raise_if_failed(trial: Trial) -> None:
        if trial.anomaly is not None:
            raise failure_type(trial.anomaly)(f"{trial.anomaly}: {trial.judgement.anomalies[trial.anomaly]}")

    def body(schedule: Schedule) -> None:
        known = seen.get(_key(schedule))
        if known is not None:
            raise_if_failed(known)
            return
        if current_build_context().is_final or clock() - began >= budget_s:
            result.stopped = "budget" if clock() - began >= budget_s else result.stopped
            return
        if failures and not within_a_failure(schedule, failures):
            return  # counted as passing, unrun: see within_a_failure
        started = clock()
        judgement = judge(schedule)
        ended = clock()
        trial = Trial(len(result.trials), schedule, judgement.first(order), judgement, round(ended - began, 3),
                      round(ended - started, 3))
        seen[_key(schedule)] = trial
        result.trials.append(trial)
        if trial.anomaly is not None:
            failures.append(schedule)
        if on_trial is not None:
            on_trial(trial)
        raise_if_failed(trial)

    search = given(strategy)(body)
    search = settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                      phases=(Phase.generate, Phase.shrink), report_multiple_bugs=True, print_blob=False,
                      verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck))(search)
    try:
        hypothesis_seed(seed)(search)()
    except (ScheduleFailed, HypothesisException, BaseExceptionGroup):
        pass  # the trials hold what was found; Hypothesis's own report of it is not ours to print
    result.elapsed_s = round(clock() - began, 3)
    return result
