"""What every fault is: typed parameters, inject that proves it landed, heal that always runs.

A fault is a small class registered in the catalog table (harness/faults/__init__.py); the
injector knows nothing of individual faults. Using one as a context manager heals it on
exit, on exception and on Ctrl-C; heal is idempotent so a second heal is harmless.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.stack import Stack


@dataclass
class FaultJournal:
    """Every inject and heal with its time: the fault windows reports and timelines read."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, action: str, fault: "Fault", **extra: Any) -> None:
        self.entries.append({"ts": time.time(), "action": action, "fault": fault.name,
                             "target": fault.target, "params": fault.params.model_dump(), **extra})

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


class Fault(ABC):
    """One kind of failure. Subclasses set the class attributes and implement _apply/_undo/_landed."""

    name: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str]
    targets: ClassVar[tuple[str, ...]]
    Params: ClassVar[type[BaseModel]]
    landing_timeout_s: ClassVar[float] = 5.0

    def __init__(self, stack: "Stack", target: str, journal: FaultJournal, **params: Any) -> None:
        if target not in self.targets:
            raise HarnessError(f"fault {self.name} can't target {target!r}: choose one of {', '.join(self.targets)}")
        try:
            self.params = self.Params(**params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "parameters"
            raise HarnessError(f"fault {self.name}: bad value for {where}: {first['msg']}") from None
        self.stack, self.target, self.journal = stack, target, journal
        self.active = False

    def inject(self) -> "Fault":
        """Applies the fault and returns only once its effect is observed (else heals and raises)."""
        self._apply()
        self.active = True
        self.journal.record("inject", self)
        deadline = time.monotonic() + self.landing_timeout_s
        while not self._landed():
            if time.monotonic() > deadline:
                self.heal()
                raise HarnessError(f"fault {self.name} on {self.target} did not land within "
                                   f"{self.landing_timeout_s:.0f}s; healed it")
            time.sleep(0.05)
        self.journal.record("landed", self)
        return self

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

    @abstractmethod
    def _apply(self) -> None: ...

    @abstractmethod
    def _undo(self) -> None: ...

    @abstractmethod
    def _landed(self) -> bool: ...
