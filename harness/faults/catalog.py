"""The fault catalog: one table from stable name to fault class, built from the family modules.

The registry heals a record by its fault's name through this table, and the injector
(harness.faults.Chaos) looks faults up in it; neither needs the other to do so.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.faults.base import Fault
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


def check(name: str, target: str, system: "Topology | None" = None, /, **params: Any) -> Fault:
    """Validates a fault's name, target and parameters without a stack (nothing is injected).
    The target is one of `system` (a run's topology: `chaos inject` passes the run's), else of
    the active topology."""
    from harness.faults.base import FaultJournal

    return lookup(name)(None, target, FaultJournal(), system, **params)


def check_params(name: str, /, **params: Any) -> None:
    """Validates a fault's name and parameters alone: they hold whatever the topology, so they
    are judged before the run (whose topology the target is judged by) is looked for."""
    from harness.faults.base import validate_params

    validate_params(name, lookup(name).Params, params)
