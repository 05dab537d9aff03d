"""What every fault is: typed parameters, inject that proves it landed, heal that always runs.

A fault is a small class registered in the catalog table (harness/faults/__init__.py); the
injector knows nothing of individual faults. Using one as a context manager heals it on
exit, on exception and on Ctrl-C; heal is idempotent so a second heal is harmless.

Each fault can also describe how to undo itself as plain JSON (``undo_state``) and undo from
that and the live stack (``undo_from``): that is what lets a fault left by a killed process be
healed later by another process that never saw the original object (harness/faults/registry.py).
The state holds names (services, proxies, paths, values), never container ids or host ports: on a
shared engine a restart moves ports and ids can be another run's by the time the heal runs, so the
heal resolves its target from the stack it is given (the run's own containers, ports read now).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import HarnessError
from harness.errors import first_line as first_line  # re-exported: the fault families take it from here
from harness.ownership import REPLICA_LABEL as REPLICA_LABEL  # re-exported: the config family takes it from here
from harness.ownership import RUN_LABEL
from harness.view import StackView

if TYPE_CHECKING:
    from docker.models.containers import Container

    from harness.topology import Topology

Observer = Callable[[dict[str, Any], "Fault"], None]
UNSTATED = "not stated"


class Params(BaseModel):
    """Base of every fault's parameters: a misspelt name is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class FaultJournal:
    """A scenario's journal: every fault action (inject, landed, heal, heal_skipped) with its time,
    from which the reports read the fault windows.

    Observers see each entry as it is written (the registry keeps the run's journal on disk that
    way, in the same format, adding the guardrails' abort entries).
    """

    entries: list[dict[str, Any]] = field(default_factory=list)
    observers: list[Observer] = field(default_factory=list)

    def record(self, action: str, fault: "Fault", **extra: Any) -> None:
        entry = {"ts": time.time(), "action": action, "fault": fault.name,
                 "target": fault.target, "params": fault.params.model_dump(), **extra}
        self.entries.append(entry)
        for observer in self.observers:
            observer(entry, fault)

    def windows(self) -> list[tuple[str, float, float | None]]:
        """(fault name, injected at, healed at or None) for each injection, in order."""
        open_: dict[tuple[str, str], float] = {}
        out: list[tuple[str, float, float | None]] = []
        for entry in self.entries:
            key = (entry["fault"], entry["target"])
            if entry["action"] == "inject":
                open_[key] = entry["ts"]
            elif entry["action"] == "heal" and key in open_:
                out.append((entry["fault"], open_.pop(key), entry["ts"]))
        out.extend((name, start, None) for (name, _), start in open_.items())
        return sorted(out, key=lambda window: window[1])


def validate_params(fault: str, model: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    """The parameters as the fault's model reads them, or one line naming the bad field."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "parameters"
        if first["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) or "none"
            raise HarnessError(f"fault {fault} has no parameter {where}: it takes {known}") from None
        raise HarnessError(f"fault {fault}: bad value for {where}: {first['msg']}") from None




def _active_topology() -> "Topology":
    from harness.topology import active  # pydantic and YAML: only once a fault is made

    return active()


def unsupported(fault: "type[Fault] | Fault", system: "Topology") -> str:
    """One line: why a topology offers a fault no target, and what to declare for it."""
    if fault.capability is None:
        return f"fault {fault.name} has no target in topology {system.name} ({system.path})"
    return (f"fault {fault.name} needs a service that declares the capability {fault.capability!r}, and topology "
            f"{system.name} ({system.path}) has none: add `capabilities: [{fault.capability}]` to the service "
            "that cooperates with it (see the fault catalog in README.md)")


def check_run(container: "Container", run_id: str) -> "Container":
    """The container, if it belongs to the run; a heal never touches another run's container
    (a recorded id can name one by the time the heal runs)."""
    found = (container.labels or {}).get(RUN_LABEL)
    if found != run_id:
        raise HarnessError(f"refused to touch container {container.name}: it belongs to run {found}, "
                           f"not to run {run_id} of the fault")
    return container


def run_container(stack: StackView, service: str) -> "Container":
    """The stack's container of a service, checked against the stack's run label. A config
    fault's replica carries the service's labels too: healing in it would leave the service
    itself as the fault made it, so that is refused as well."""
    container = check_run(stack.docker_container(service), stack.run_id)
    if REPLICA_LABEL in (container.labels or {}):
        raise HarnessError(f"{service} of run {stack.run_id} resolved to the replica {container.name}, not to "
                           "the service: heal the config fault first")
    return container


class Fault(ABC):
    """One kind of failure. Subclasses set the class attributes and implement _apply/_undo/_landed
    (or undo_state/undo_from, which give _undo for free and make the fault healable later)."""

    name: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    # What a service must declare (`capabilities:` in the topology file) for this fault to work on
    # it: its mechanism needs the service's cooperation (a control API, a schema, a clock it reads
    # from a file). None: a generic fault, whose targets follow from the topology alone.
    capability: ClassVar[str | None] = None
    # One line: what inject observes before it returns, so `chaos faults` can say how a fault is
    # proven. Neutral by default so a family that has not said it yet still imports; the catalog
    # test names every fault that still has the default.
    proves: ClassVar[str] = UNSTATED
    landing_timeout_s: float = 5.0
    healing_timeout_s: float = 10.0
    poll_s: ClassVar[float] = 0.05

    def __init__(self, stack: StackView | None, target: str, journal: FaultJournal,
                 system: "Topology | None" = None, /, **params: Any) -> None:
        """The target is checked against the stack's topology (the run's own); without a stack,
        against `system`, else the active topology. Positional: a parameter may be named so."""
        system = stack.topology if stack is not None else system or _active_topology()
        targets = self.targets_in(system)
        if not targets:
            raise HarnessError(unsupported(self, system))
        if target not in targets:
            raise HarnessError(f"fault {self.name} can't target {target!r}: choose one of {', '.join(targets)}")
        self.params = validate_params(self.name, self.Params, params)
        self._stack, self.target, self.journal = stack, target, journal
        self.active = False
        self.expires_at: float | None = None  # set by the injector for time-boxed faults
        self.record_id: str | None = None  # the registry's record while the fault is active
        self.started_at: float | None = None  # when the fault window opened (epoch seconds)
        self.evidence: dict[str, Any] = {}  # what the proof observed, kept in the "landed" entry

    @property
    def stack(self) -> StackView:
        """The run's stack. A fault built without one (its parameters checked, nothing running)
        has nothing to act on: saying so beats an AttributeError deep in a family."""
        if self._stack is None:
            raise HarnessError(f"fault {self.name} has no stack to act on: start one (`chaos up`) first")
        return self._stack

    def inject(self) -> "Fault":
        """Applies the fault and returns only once its effect is observed (else heals and raises;
        also on Ctrl-C while waiting, since no `with` block holds the fault yet)."""
        self._prepare()  # what the proof compares with (a baseline) is measured before applying
        self.started_at = time.time()  # _apply may move it to when the effect began
        self._apply()
        self.active = True
        try:
            self.journal.record("inject", self, ts=self.started_at)  # observers (the registry) may fail too
            self._await(self._landed, f"did not land within {self.landing_timeout_s:.0f}s",
                        self.landing_timeout_s)
        except BaseException as exc:
            self._heal_after_failure(exc)
            raise
        self.journal.record("landed", self, **({"evidence": self.evidence} if self.evidence else {}))
        return self

    def _heal_after_failure(self, exc: BaseException) -> None:
        """Heals a fault whose inject failed; a heal that can't prove itself either is said in
        the same one line, since the inject's own error is what the caller must see first."""
        try:
            self.heal()
        except HarnessError as heal_error:
            if isinstance(exc, HarnessError):
                exc.args = (f"{exc.args[0]}; and {heal_error}",)

    def _await(self, condition: Callable[[], bool], failure: str, timeout_s: float) -> None:
        """Polls a proof until it holds; bounded by timeout_s, then one line naming the fault."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise HarnessError(f"fault {self.name} on {self.target} {failure}; healed it")
            time.sleep(self.poll_s)

    def heal(self) -> None:
        """Undoes the fault and, when it was active, returns once the proof shows the target as
        it was before (raises if it never does); harmless when it is not active."""
        self._undo()
        if not self.active:
            return
        self.active = False
        undone_at = time.time()
        try:
            self._await(self._healed, f"still shows its effect {self.healing_timeout_s:.0f}s after healing",
                        self.healing_timeout_s)
        finally:
            self.journal.record("heal", self, ts=undone_at, proven_s=round(time.time() - undone_at, 3))

    def __enter__(self) -> "Fault":
        return self if self.active else self.inject()

    def __exit__(self, *_: object) -> None:
        self.heal()

    def undo_state(self) -> dict[str, Any]:
        """Plain JSON saying what to undo, without this object (recorded while active): names
        and values, no addresses (undo_from resolves those from the stack)."""
        return {}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Undoes a fault from its recorded state on the live stack of its run (this process's
        own, or one attached by the run's label); idempotent like heal()."""
        raise HarnessError(f"fault {cls.name} can't be healed from a record")

    @classmethod
    def targets_in(cls, system: "Topology") -> tuple[str, ...]:
        """What the fault can target in a topology: the services that declare its capability
        (the generic families override this: every proxy, every service)."""
        return system.with_capability(cls.capability) if cls.capability else ()

    @classmethod
    def recordable(cls) -> bool:
        """Whether another process can heal it from a record (the class implements undo_from);
        only such faults are kept in the registry, so every record there can be healed."""
        return cls.undo_from.__func__ is not Fault.undo_from.__func__  # type: ignore[attr-defined]

    @abstractmethod
    def _apply(self) -> None: ...

    def _undo(self) -> None:
        self.undo_from(self.undo_state(), self.stack)

    def _prepare(self) -> None:
        """Measures what the proofs compare with, before anything is applied (default: nothing)."""

    @abstractmethod
    def _landed(self) -> bool: ...

    def _healed(self) -> bool:
        """Whether the target is back as it was; faults whose undo is its own proof keep this."""
        return True
