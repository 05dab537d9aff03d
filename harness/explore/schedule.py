"""One explored example: a bounded list of fault steps, each healed at its end.

A step is a fault of the catalog on one target with its typed parameters, injected at
``start_s`` after the schedule begins and healed ``duration_s`` later; steps may overlap. The
bounds hold whoever builds a schedule (the generator, a replay file, a person): a schedule is
a time box, never an open-ended outage.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_STEPS = 4  # more overlapping faults than this stop telling which one a failure is about
MAX_START_S = 4.0  # every step starts within this long of the schedule's beginning
MIN_DURATION_S, MAX_DURATION_S = 0.5, 4.0  # long enough to land, short enough to keep schedules quick
MAX_SPAN_S = MAX_START_S + MAX_DURATION_S


class Step(BaseModel):
    """One fault, on one target, for a while."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: str = Field(min_length=1)
    target: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    start_s: float = Field(ge=0, le=MAX_START_S)
    duration_s: float = Field(ge=MIN_DURATION_S, le=MAX_DURATION_S)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return (f"{self.fault} on {self.target}{f' ({params})' if params else ''} "
                f"at +{self.start_s:g}s for {self.duration_s:g}s")


class Schedule(BaseModel):
    """The steps of one example, in the order they start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _in_start_order(self) -> Schedule:
        pairs = [(step.fault, step.target) for step in self.steps]
        if len(set(pairs)) < len(pairs):
            raise ValueError("one step per fault and target: the same fault twice on one target is one fault")
        ordered = tuple(sorted(self.steps, key=lambda step: (step.start_s, step.fault, step.target)))
        object.__setattr__(self, "steps", ordered)
        return self

    @property
    def span_s(self) -> float:
        """From the schedule's beginning to its last heal."""
        return max(step.end_s for step in self.steps)

    def events(self) -> list[tuple[float, str, int]]:
        """(offset, "inject" or "heal", step index), in time order; at one instant heals come
        before injects, so a step that ends as another begins never overlaps it."""
        marks = [(step.start_s, "inject", i) for i, step in enumerate(self.steps)]
        marks += [(step.end_s, "heal", i) for i, step in enumerate(self.steps)]
        return sorted(marks, key=lambda mark: (mark[0], mark[1] != "heal", mark[2]))

    def size(self) -> tuple[int, float, float]:
        """What shrinking makes smaller: steps, then total fault time, then the span."""
        return len(self.steps), round(sum(step.duration_s for step in self.steps), 3), self.span_s

    def __str__(self) -> str:
        return "; ".join(str(step) for step in self.steps)
