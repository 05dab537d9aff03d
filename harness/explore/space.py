"""What exploration draws from: the faults a topology supports, their targets and their
parameters, as Hypothesis strategies, and the milder variants of a step the shrinker tries.

Parameters come from each fault's own model (its JSON schema: enums, bounds, defaults), clipped
by EXPLORE_RANGES to what fits a schedule of seconds: a 600 s timeout in a 4 s step tells
nothing a 3 s one does not. Each parameter's values are listed mildest first (an enum's
default, a range's low end): the shrinker turns a parameter down towards the head of its list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.explore.schedule import MAX_DURATION_S, MAX_START_S, MAX_STEPS, MIN_DURATION_S, Schedule, Step

# name -> (low, high) explored, within the fault's own bounds.
EXPLORE_RANGES: dict[str, tuple[int, int]] = {
    "latency_ms": (0, 3000), "jitter_ms": (0, 500), "timeout_ms": (0, 3000), "delay_ms": (10, 3000),
    "rate_kb": (1, 100), "bytes": (1, 65536), "average_size": (1, 1024), "size_variation": (0, 512),
    "delay_us": (0, 100_000), "per_s": (1, 20), "count": (1, 10), "copies": (1, 5),
    "retry_after": (0, 3), "stop_timeout_s": (0, 5), "skew_s": (-600, 600), "age_s": (1, 3600), "ahead_s": (1, 3600),
}
FALLBACK_SPAN = 100  # an integer range not in the table is explored this far from its low end
GRID_POINTS = 8  # an integer range is explored at this many steps between its ends
# name -> the value every explored step uses: the schedule, not the fault, says when it heals.
FIXED: dict[str, Any] = {"duration_s": None}
STEP_S = 0.5  # starts and durations are drawn on this grid, so replay files read plainly


def _bounds(spec: dict[str, Any]) -> tuple[float | None, float | None]:
    low = spec.get("minimum", spec.get("exclusiveMinimum"))
    high = spec.get("maximum", spec.get("exclusiveMaximum"))
    return low, high


def _integers(name: str, spec: dict[str, Any]) -> list[int]:
    low, high = _bounds(spec)
    want_low, want_high = EXPLORE_RANGES.get(name, (int(low if low is not None else 0), None))
    low_i = max(int(low), want_low) if low is not None else want_low
    if "exclusiveMinimum" in spec and low_i <= spec["exclusiveMinimum"]:
        low_i = int(spec["exclusiveMinimum"]) + 1
    high_i = want_high if want_high is not None else low_i + FALLBACK_SPAN
    high_i = max(low_i, min(int(high), high_i) if high is not None else high_i)
    # On a grid: on a real system every shrink step is a schedule run, and halving over 8
    # points takes three, where over 3000 values it takes twelve.
    return sorted({low_i + round((high_i - low_i) * i / GRID_POINTS) for i in range(GRID_POINTS + 1)})


def _numbers(spec: dict[str, Any]) -> list[float]:
    low, high = _bounds(spec)
    low_f, high_f = float(low if low is not None else 0.0), float(high if high is not None else 1.0)
    exclusive = "exclusiveMinimum" in spec
    # Tenths of the range, lowest first (a toxicity turns down towards 0.1, never to 0).
    return [round(low_f + (high_f - low_f) * i / 10, 3) for i in range(1 if exclusive else 0, 11)]


def points(name: str, spec: dict[str, Any]) -> list[Any] | None:
    """The values of one parameter exploration draws from, mildest first (what a shrink turns
    it down towards), or None when it can't be explored (a required value the catalog can't
    know, such as an order id)."""
    if name in FIXED:
        return [FIXED[name]]
    if "enum" in spec:
        default = spec.get("default")
        return [default] + [v for v in spec["enum"] if v != default] if default in spec["enum"] else list(spec["enum"])
    branches = [b for b in spec.get("anyOf", []) if b.get("type") != "null"]
    if branches and spec.get("default") is None:
        return [None]  # optional and off by default: a schedule keeps it off
    kind = spec.get("type") or (branches[0].get("type") if branches else None)
    bounded = {**spec, **(branches[0] if branches else {})}
    if kind == "integer":
        return _integers(name, bounded)
    if kind == "number":
        return _numbers(bounded)
    if "default" in spec:
        return [spec["default"]]
    return None


def parameter(name: str, spec: dict[str, Any]) -> st.SearchStrategy[Any] | None:
    """The strategy of one parameter (see points)."""
    values = points(name, spec)
    return None if values is None else st.sampled_from(values)


SPARING_FAMILIES = ("process",)  # the faults that kill, restart or stop a container


def explorable(rows: Iterable[dict[str, Any]], only: Sequence[str] = (),
               targets: Sequence[str] = (), witnesses: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The catalog rows (harness.faults.describe) exploration may draw: the faults named by
    `only` (a family such as "network", or a fault name; all when empty), on `targets` (all
    when empty), whose every parameter can be drawn. One line when nothing is left.

    `witnesses` are the services whose records the judge reads (a vendor's charges, a mailbox):
    the process faults spare them, since a witness restarted forgets what it saw, and the
    judgement would be of the lost evidence, not of the system's promise."""
    chosen = []
    for row in rows:
        if only and row["family"] not in only and row["name"] not in only:
            continue
        spared = witnesses if row["family"] in SPARING_FAMILIES else ()
        aimed = [t for t in row["targets"] if (not targets or t in targets) and t not in spared]
        if aimed and all(points(n, s) is not None for n, s in row["params"].items()):
            chosen.append({**row, "targets": aimed})
    if not chosen:
        raise HarnessError(f"nothing to explore: no fault of {list(only) or 'the catalog'} can target "
                           f"{list(targets) or 'this topology'}; `chaos faults` lists faults and targets")
    return chosen


def step(row: dict[str, Any]) -> st.SearchStrategy[Step]:
    params = st.fixed_dictionaries({name: s for name, spec in row["params"].items()
                                    if (s := parameter(name, spec)) is not None})
    grid = int(MAX_START_S / STEP_S)
    return st.builds(
        Step, fault=st.just(row["name"]), target=st.sampled_from(row["targets"]), params=params,
        start_s=st.integers(0, grid).map(lambda n: n * STEP_S),
        duration_s=st.integers(int(MIN_DURATION_S / STEP_S), int(MAX_DURATION_S / STEP_S)).map(lambda n: n * STEP_S))


def schedules(rows: Sequence[dict[str, Any]], max_steps: int = MAX_STEPS) -> st.SearchStrategy[Schedule]:
    """Schedules of 1..max_steps steps drawn from the rows (Hypothesis draws them from the seed)."""
    any_step = st.one_of([step(row) for row in rows])
    # One step per fault and target: the same fault twice on one target is one fault, healed twice.
    return st.lists(any_step, min_size=1, max_size=max_steps, unique_by=lambda s: (s.fault, s.target)).map(
        lambda steps: Schedule(steps=tuple(steps)))


def milder(rows: Sequence[dict[str, Any]]) -> Callable[[Step], list[Step]]:
    """For a step, the same step with one parameter turned down: to its mildest value, then
    halfway there, one parameter at a time (what the shrinker tries)."""
    specs = {row["name"]: row["params"] for row in rows}

    def variants(step: Step) -> list[Step]:
        out = []
        for name, spec in specs.get(step.fault, {}).items():
            values = points(name, spec) or []
            if step.params.get(name) not in values:
                continue
            at = values.index(step.params[name])
            for index in dict.fromkeys((0, at // 2)):
                if index < at:
                    out.append(step.model_copy(update={"params": {**step.params, name: values[index]}}))
        return out
    return variants
