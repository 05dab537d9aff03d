"""The fault catalog: one table from stable name to fault class, and the injector over it."""

from __future__ import annotations

import functools
import importlib
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.faults import registry

if TYPE_CHECKING:
    from harness.faults.base import Fault
    from harness.stack import Stack
    from harness.topology import Topology

FAMILY_MODULES = ("network", "http", "disk", "auth", "message", "process", "config", "data")


@functools.cache
def _families() -> tuple[ModuleType, ...]:
    """The family modules, imported on first use: a process that only reads the registry (the
    game-day recorder, `chaos status`) does without their clients (JWT, Postgres, AMQP)."""
    return tuple(importlib.import_module(f"harness.faults.{name}") for name in FAMILY_MODULES)


@functools.cache
def _catalog() -> dict[str, type[Fault]]:
    return {cls.name: cls for family in _families() for cls in family.FAULTS}


def __getattr__(name: str) -> Any:
    """``FAMILIES`` and ``CATALOG`` as module attributes, built when first asked for."""
    if name == "FAMILIES":
        return _families()
    if name == "CATALOG":
        return _catalog()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _system(system: "Topology | None") -> "Topology":
    from harness.topology import active

    return system or active()


def describe(system: "Topology | None" = None) -> list[dict[str, Any]]:
    """Name, family, targets in the topology (the active one by default), the capability it needs
    (None: generic), parameters (type, default, range), one line, and how inject proves its
    effect, per fault the topology supports (one target at least)."""
    system = _system(system)
    rows = []
    for cls in _catalog().values():
        targets = cls.targets_in(system)
        if not targets:
            continue
        schema = cls.Params.model_json_schema()
        params = {name: {k: v for k, v in spec.items() if k != "title"}
                  for name, spec in schema.get("properties", {}).items()}
        rows.append({"name": cls.name, "family": cls.family, "targets": list(targets),
                     "capability": cls.capability, "params": params, "description": cls.description,
                     "proves": cls.proves})
    return rows


def unsupported(system: "Topology | None" = None) -> dict[str, str]:
    """The faults a topology offers no target, each with the capability it needs."""
    system = _system(system)
    return {cls.name: cls.capability or "" for cls in _catalog().values() if not cls.targets_in(system)}


def lookup(name: str) -> type[Fault]:
    catalog = _catalog()
    if name not in catalog:
        raise HarnessError(f"unknown fault {name!r}: `chaos faults` lists them ({', '.join(catalog)})")
    return catalog[name]


def check(name: str, target: str, **params: Any) -> Fault:
    """Validates a fault's name, target and parameters without a stack (nothing is injected)."""
    from harness.faults.base import FaultJournal

    return lookup(name)(None, target, FaultJournal(), **params)  # type: ignore[arg-type]


class Chaos:
    """The injector the `chaos` fixture and the CLI share: looks faults up, tracks what is active.

    Every fault it injects is also recorded in the registry, owned by `owner` (this process by
    default; the CLI hands its faults to the stack's owner, since it exits right after).
    """

    def __init__(self, stack: "Stack", owner: str | None = None) -> None:
        self.stack = stack
        from harness.faults.base import FaultJournal  # with the families: pydantic is not for chaos status

        self.journal = FaultJournal()
        self.active: list[Fault] = []
        if stack is not None:
            from harness.ownership import owner_token

            self.journal.observers.append(registry.Recorder(stack.run_id, owner or owner_token()))

    def fault(self, name: str, target: str, **params: Any) -> Fault:
        fault = lookup(name)(self.stack, target, self.journal, **params)
        self.active.append(fault)
        return fault

    def inject(self, name: str, target: str, for_s: float | None = None, **params: Any) -> Fault:
        """Injects now; use the result as a context manager to heal on exit. With `for_s`, a
        detached process heals it after that long even if this process is gone by then."""
        registry.check_for(for_s)
        fault = self.fault(name, target, **params)
        fault.expires_at = time.time() + for_s if for_s is not None else None
        try:
            fault.inject()
        except BaseException:
            # Never applied, or healed by inject itself: healing it again at teardown could
            # undo an equal fault that is active (the same toxic name, the same vendor kind).
            self.active.remove(fault)
            raise
        if fault.expires_at is not None and not fault.record_id:
            fault.heal()
            raise HarnessError(f"{name} can't be time-boxed: it can't be healed from another process")
        if fault.expires_at is not None and fault.record_id:
            registry.spawn_healer(fault.record_id, fault.expires_at - time.time())
        return fault

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
