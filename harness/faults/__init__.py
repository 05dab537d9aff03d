"""The faults: the catalog (harness.faults.catalog, its names offered here too) and the injector over it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from harness import detached
from harness.errors import HarnessError
from harness.faults import catalog, registry
from harness.faults.catalog import check as check  # the package's names, re-exported
from harness.faults.catalog import check_params as check_params
from harness.faults.catalog import describe as describe
from harness.faults.catalog import lookup as lookup
from harness.faults.catalog import unsupported as unsupported

if TYPE_CHECKING:
    from harness.faults.base import Fault
    from harness.view import StackView


def __getattr__(name: str) -> Any:
    """``FAMILIES`` and ``CATALOG`` as attributes of the package too, built when first asked for."""
    if name in ("FAMILIES", "CATALOG"):
        return getattr(catalog, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Chaos:
    """The injector the `chaos` fixture and the CLI share: looks faults up, tracks what is active.

    Every fault it injects is also recorded in the registry, owned by `owner` (this process by
    default; the CLI hands its faults to the stack's owner, since it exits right after).
    """

    def __init__(self, stack: "StackView | None", owner: str | None = None) -> None:
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
            detached.spawn_healer(fault.record_id, fault.expires_at - time.time())
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
