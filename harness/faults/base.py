"""What every fault is: typed parameters, inject that proves it landed, heal that always runs.

A fault is a small class registered in the catalog table (harness/faults/__init__.py); the
injector knows nothing of individual faults. Using one as a context manager heals it on
exit, on exception and on Ctrl-C; heal is idempotent so a second heal is harmless.

Each fault can also describe how to undo itself as plain JSON (``undo_state``) and undo from
that alone (``undo_from``): that is what lets a fault left by a killed process be healed later
by another process that never saw the original object (harness/faults/registry.py).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.stack import Stack

Observer = Callable[[dict[str, Any], "Fault"], None]


class Params(BaseModel):
    """Base of every fault's parameters: a misspelt name is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class FaultJournal:
    """Every inject and heal with its time: the fault windows reports and timelines read.

    Observers see each entry as it is written (the registry keeps its per-run file that way).
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


class Fault(ABC):
    """One kind of failure. Subclasses set the class attributes and implement _apply/_undo/_landed
    (or undo_state/undo_from, which give _undo for free and make the fault healable later)."""

    name: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str]
    targets: ClassVar[tuple[str, ...]]
    Params: ClassVar[type[BaseModel]]
    landing_timeout_s: float = 5.0
    poll_s: ClassVar[float] = 0.05

    def __init__(self, stack: "Stack", target: str, journal: FaultJournal, **params: Any) -> None:
        if target not in self.targets:
            raise HarnessError(f"fault {self.name} can't target {target!r}: choose one of {', '.join(self.targets)}")
        self.params = validate_params(self.name, self.Params, params)
        self.stack, self.target, self.journal = stack, target, journal
        self.active = False
        self.expires_at: float | None = None  # set by the injector for time-boxed faults
        self.record_id: str | None = None  # the registry's record while the fault is active

    def inject(self) -> "Fault":
        """Applies the fault and returns only once its effect is observed (else heals and raises;
        also on Ctrl-C while waiting, since no `with` block holds the fault yet)."""
        started = time.time()  # the fault window opens when applying starts (stopping a broker takes seconds)
        self._apply()
        self.active = True
        try:
            self.journal.record("inject", self, ts=started)  # observers (the registry) may fail too
            self._await_landing()
        except BaseException:
            self.heal()
            raise
        self.journal.record("landed", self)
        return self

    def _await_landing(self) -> None:
        deadline = time.monotonic() + self.landing_timeout_s
        while not self._landed():
            if time.monotonic() > deadline:
                raise HarnessError(f"fault {self.name} on {self.target} did not land within "
                                   f"{self.landing_timeout_s:.0f}s; healed it")
            time.sleep(self.poll_s)

    def heal(self) -> None:
        """Undoes the fault; harmless when it is not active."""
        self._undo()
        if self.active:
            self.journal.record("heal", self)
        self.active = False

    def __enter__(self) -> "Fault":
        return self if self.active else self.inject()

    def __exit__(self, *_: object) -> None:
        self.heal()

    def undo_state(self) -> dict[str, Any]:
        """Plain JSON saying what to undo, without this object (recorded while active)."""
        return {}

    @classmethod
    def undo_from(cls, state: dict[str, Any]) -> None:
        """Undoes a fault from its recorded state alone; idempotent like heal()."""
        raise HarnessError(f"fault {cls.name} can't be healed from a record")

    @classmethod
    def recordable(cls) -> bool:
        """Whether another process can heal it from a record (the class implements undo_from);
        only such faults are kept in the registry, so every record there can be healed."""
        return cls.undo_from.__func__ is not Fault.undo_from.__func__  # type: ignore[attr-defined]

    @abstractmethod
    def _apply(self) -> None: ...

    def _undo(self) -> None:
        self.undo_from(self.undo_state())

    @abstractmethod
    def _landed(self) -> bool: ...
