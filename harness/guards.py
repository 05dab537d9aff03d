"""Guards: the assertions of a scenario, recorded as they run, so that what the reports call
verified rests on checks that ran and held in that run rather than on what a marker claims.

A scenario's chaos marker maps each guard tag it uses to the manual's prescription that guard
proves (`guards={"fallback_202": "fallback", "latency_budget": None}`); `expect(tag, held,
message)` is the assertion. While a scenario runs (the plugin activates a log for each one)
every guard appends (tag, held) to the log, and a tag the marker does not declare fails at
once, so the declarations cannot drift from the assertions. Nothing of the harness is imported:
scenarios, the plugin and the reports all depend on this module, never the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Guards of the helpers every scenario shares (scenarios/conftest.py: steady state before and
# after, the order ledger). They prove no prescription by themselves; a marker may still name
# one for them when, in that scenario, they do (the steady state after a manual's first response).
COMMON: dict[str, str | None] = {"steady_state_before": None, "steady_state_after": None, "ledger": None}


@dataclass
class GuardLog:
    """One scenario's guards: what its marker declares (COMMON included) and what ran, in order."""

    scenario: str
    declared: dict[str, str | None]
    ran: list[tuple[str, bool]] = field(default_factory=list)

    def records(self) -> list[dict[str, object]]:
        """What ran, as the report keeps it: {tag, prescription, held}, in the order they ran."""
        return [{"tag": tag, "prescription": self.declared.get(tag), "held": held} for tag, held in self.ran]


_active: GuardLog | None = None


def table(guards: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """A marker's guards with the shared ones: tag -> prescription id (or None); the marker's
    own entry wins over COMMON's."""
    return {**COMMON, **dict(guards or {})}


def prescriptions(guards: Mapping[str, str | None] | None) -> list[str]:
    """The prescription ids a marker's guards claim to prove, once each, in declaration order."""
    return list(dict.fromkeys(p for p in table(guards).values() if p is not None))


def activate(scenario: str, guards: Mapping[str, str | None] | None) -> GuardLog:
    """A fresh log for the scenario about to run; expect() records into it until deactivate()."""
    global _active
    _active = GuardLog(scenario, table(guards))
    return _active


def deactivate(log: GuardLog | None = None) -> None:
    """Ends the active log (only `log`, when given, so a late call can't end a newer one)."""
    global _active
    if log is None or _active is log:
        _active = None


def active() -> GuardLog | None:
    return _active


def expect(tag: str, held: bool, message: str) -> None:
    """The guard `tag`: raises AssertionError("[tag] message") when `held` is false (any value
    is taken for its truth), and records the outcome in the active scenario's log. Without an
    active log (outside a chaos scenario) it only asserts."""
    __tracebackhide__ = True  # pytest shows the scenario's line, not this one
    held = bool(held)
    log = _active
    if log is not None:
        if tag not in log.declared:
            raise AssertionError(f"guard {tag!r} is not declared by scenario {log.scenario}: add it to the "
                                 f"guards= of its chaos marker (with the prescription it proves, or None)")
        log.ran.append((tag, held))
    if not held:
        raise AssertionError(f"[{tag}] {message}")
