"""The fault catalog: one table from stable name to fault class, and the injector over it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.faults.base import Fault, FaultJournal
from harness.faults.http import VendorStatus

if TYPE_CHECKING:
    from harness.stack import Stack

CATALOG: dict[str, type[Fault]] = {cls.name: cls for cls in (VendorStatus,)}


def describe() -> list[dict[str, Any]]:
    """Name, family, targets, parameters (type, default, range) and one line, per fault."""
    rows = []
    for cls in CATALOG.values():
        schema = cls.Params.model_json_schema()
        params = {name: {k: v for k, v in spec.items() if k != "title"}
                  for name, spec in schema.get("properties", {}).items()}
        rows.append({"name": cls.name, "family": cls.family, "targets": list(cls.targets),
                     "params": params, "description": cls.description})
    return rows


class Chaos:
    """The injector the `chaos` fixture and the CLI share: looks faults up, tracks what is active."""

    def __init__(self, stack: "Stack") -> None:
        self.stack = stack
        self.journal = FaultJournal()
        self.active: list[Fault] = []

    def fault(self, name: str, target: str, **params: Any) -> Fault:
        if name not in CATALOG:
            raise HarnessError(f"unknown fault {name!r}: `chaos faults` lists them ({', '.join(CATALOG)})")
        fault = CATALOG[name](self.stack, target, self.journal, **params)
        self.active.append(fault)
        return fault

    def inject(self, name: str, target: str, **params: Any) -> Fault:
        """Injects now; use the result as a context manager to heal on exit."""
        return self.fault(name, target, **params).inject()

    def heal_all(self) -> None:
        """Heals every fault this injector made, newest first; every heal is attempted."""
        errors = []
        for fault in reversed(self.active):
            try:
                fault.heal()
            except Exception as exc:  # keep healing the rest; report at the end
                errors.append(f"{fault.name}: {exc}")
        self.active.clear()
        if errors:
            raise HarnessError("some faults did not heal: " + "; ".join(errors))
