"""The search: Hypothesis draws schedules from a seed, a judge runs each on the system and
names what went wrong, a failing schedule is run once more before it counts (on a real system
a failure may hang on timing), and the first confirmed one is shrunk to the smallest that still
fails for the same anomaly class.

The shrinking is the harness's own, not Hypothesis's. Hypothesis's shrinker is made for
examples that cost microseconds and tries hundreds of candidates, many of them other faults
and targets; here a candidate is a schedule run on a real stack (seconds each), so the
shrinker tries only what makes the failing schedule smaller, in the order that tells most per
run: each step alone, then without one step, then each step shorter, earlier, and with one
parameter turned down (harness.explore.space.milder). A candidate is kept only when it fails
for the same anomaly class, so a finding never slips into another one. The budget bounds the
whole search, generation and shrinking; judgements are kept by schedule, so nothing is run twice.

Schedules that failed in an earlier search (`known`, from harness.explore.memory) are run
before any is generated, as Hypothesis replays its example database first: a bug found last
night is found again in the first minute, and one that no longer shows is reported as held.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.errors import HypothesisException

from harness.explore.schedule import MIN_DURATION_S, Schedule, Step

UNJUDGED = "unjudged"  # the anomaly class of a schedule whose run or judgement raised
MAX_EXAMPLES = 500  # far above what a budget of minutes runs; past the budget each is a no-op
MAX_SHRINK_TRIES = 200  # a bound of its own on the shrinker's candidates, whatever the budget
GRID_S = 0.5  # durations are halved on this grid


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
Milder = Callable[[Step], list[Step]]


@dataclass(frozen=True)
class Trial:
    """One schedule run: when it ended (seconds into the search), what was found."""

    index: int
    schedule: Schedule
    anomaly: str | None
    judgement: Judgement
    ended_s: float
    took_s: float
    phase: str = "generate"  # "known" (failed in an earlier search), "confirm" (run again) or "shrink"


@dataclass(frozen=True)
class Finding:
    """One anomaly class: the first schedule that showed it, the smallest, and the steps between."""

    anomaly: str
    first: Trial
    smallest: Trial
    shrinks: tuple[Trial, ...]  # every schedule the shrinker kept, in order (the first is `first`)


@dataclass
class Exploration:
    seed: int
    budget_s: float
    trials: list[Trial] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: str = "searched"  # "searched", "found" (and shrunk), "budget" or "interrupted"
    kept: list[Trial] = field(default_factory=list)  # the failing schedule as the shrinker made it smaller
    unconfirmed: list[Trial] = field(default_factory=list)  # failed once, not when run again
    started_at: float = field(default_factory=time.time)  # wall clock: trials' times are offsets from it

    def findings(self) -> list[Finding]:
        if not self.kept:
            return []
        return [Finding(self.kept[0].anomaly or "", self.kept[0], self.kept[-1], tuple(self.kept))]


class ScheduleFailed(Exception):
    """A generated schedule showed an anomaly: ends Hypothesis's generation."""


def _key(schedule: Schedule) -> str:
    return json.dumps(schedule.model_dump(mode="json"), sort_keys=True)


def _replaced(schedule: Schedule, index: int, step: Step) -> Schedule:
    return Schedule(steps=schedule.steps[:index] + (step,) + schedule.steps[index + 1:])


def candidates(schedule: Schedule, milder: Milder) -> Iterator[Schedule]:
    """Smaller schedules than `schedule`, the most telling first (see the module's doc); each
    is smaller in steps, time or a parameter's mildness, so keeping one always ends."""
    steps = schedule.steps
    if len(steps) > 1:
        for step in steps:
            yield Schedule(steps=(step.model_copy(update={"start_s": 0.0}),))
        for index in range(len(steps)):
            yield Schedule(steps=steps[:index] + steps[index + 1:])
    for index, step in enumerate(steps):
        shorter = {MIN_DURATION_S, max(MIN_DURATION_S, round(step.duration_s / 2 / GRID_S) * GRID_S)}
        for duration in sorted(d for d in shorter if d < step.duration_s):
            yield _replaced(schedule, index, step.model_copy(update={"duration_s": duration}))
        if step.start_s > 0:
            yield _replaced(schedule, index, step.model_copy(update={"start_s": 0.0}))
        for variant in milder(step):
            yield _replaced(schedule, index, variant)


def explore(judge: Judge, strategy: st.SearchStrategy[Schedule], *, seed: int, budget_s: float,
            order: Sequence[str] = (), milder: Milder = lambda step: [],
            on_trial: Callable[[Trial], None] | None = None, clock: Callable[[], float] = time.monotonic,
            max_examples: int = MAX_EXAMPLES, known: Sequence[Schedule] = ()) -> Exploration:
    """Searches for a schedule that fails, within budget_s, from a fixed seed, and shrinks the
    first one found. `order` ranks the anomaly classes (the checker's): a schedule showing
    several is filed under the first. `known` schedules are run first (see the module's doc)."""
    result = Exploration(seed=seed, budget_s=budget_s)
    began = clock()
    seen: dict[str, Trial] = {}

    def over() -> bool:
        if clock() - began >= budget_s:
            result.stopped = "budget"
            return True
        return False

    def trial(schedule: Schedule, phase: str, fresh: bool = False) -> Trial:
        known = seen.get(_key(schedule))
        if known is not None and not fresh:
            return known
        started = clock()
        try:
            judgement = judge(schedule)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is this schedule's finding
            # A schedule the harness could not run or judge to the end (the evidence unreadable,
            # a heal that raised) is a finding of its own: named, shrunk and replayable like any
            # other, rather than an error that ends the search with nothing said.
            judgement = Judgement({UNJUDGED: " ".join(f"{type(exc).__name__}: {exc}".split())[:500]})
        ended = clock()
        done = Trial(len(result.trials), schedule, judgement.first(order), judgement, round(ended - began, 3),
                     round(ended - started, 3), phase)
        seen.setdefault(_key(schedule), done)
        result.trials.append(done)
        if on_trial is not None:
            on_trial(done)
        return done

    def failed(schedule: Schedule, phase: str) -> bool:
        """Runs a schedule (once per search) and says whether it failed, confirmed."""
        ran = seen.get(_key(schedule))
        found = ran or trial(schedule, phase)
        if found.anomaly is None or found in result.unconfirmed:
            return False
        if ran is None and not over():
            # Run again before it counts: on a real system a failure may hang on timing (an
            # outage that caught an event in flight); one that does not show twice is kept as
            # unconfirmed, and the search goes on.
            again = trial(schedule, "confirm", fresh=True)
            if again.anomaly != found.anomaly:
                result.unconfirmed.append(found)
                return False
        return True

    def body(schedule: Schedule) -> None:
        if _key(schedule) not in seen and (current_build_context().is_final or over()):
            return
        if failed(schedule, "generate"):
            raise ScheduleFailed

    search = given(strategy)(body)
    search = settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                      phases=(Phase.generate,), print_blob=False, verbosity=Verbosity.quiet,
                      suppress_health_check=list(HealthCheck))(search)
    try:
        if not any(not over() and failed(schedule, "known") for schedule in known):
            try:
                hypothesis_seed(seed)(search)()
            except (ScheduleFailed, HypothesisException):
                pass
        first = _first_finding(result)
        if first is not None:
            result.kept.append(first)
            _shrink(result, first, milder, trial, over)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (harness.signals): what was found so far is returned for the caller
        # to write, and the caller then stops; the schedule that was running heals with its injector.
        result.stopped = "interrupted"
        first = _first_finding(result)
        if not result.kept and first is not None:
            result.kept.append(first)
    result.elapsed_s = round(clock() - began, 3)
    return result


def _first_finding(result: Exploration) -> Trial | None:
    """The first known or generated schedule that failed and was not left unconfirmed."""
    return next((t for t in result.trials if t.anomaly is not None and t.phase in ("known", "generate")
                 and t not in result.unconfirmed), None)


def _shrink(result: Exploration, first: Trial, milder: Milder, trial: Callable[[Schedule, str], Trial],
            over: Callable[[], bool]) -> None:
    """Greedy: keep the first candidate that fails for the same class, then start over from it."""
    current, tries = first, 0
    kept = {_key(first.schedule)}
    while True:
        for candidate in candidates(current.schedule, milder):
            if over() or tries >= MAX_SHRINK_TRIES:
                return
            tries += 1
            tried = trial(candidate, "shrink")
            # Kept once: a candidate that is one already kept (a variant that changed nothing)
            # must not start the round over, or the shrinker would go round for ever.
            if tried.anomaly == first.anomaly and _key(candidate) not in kept:
                current = tried
                kept.add(_key(candidate))
                result.kept.append(tried)
                break
        else:
            result.stopped = "found"
            return
