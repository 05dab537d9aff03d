"""The protections of the system under test, and their switches as the harness turns them.

The table itself belongs to the shop (services/shop/protections.py: a name, the services that
hold it, one line of what it does); it uses only the standard library, so the harness reads
that same file rather than keeping a copy that could drift. A stack can start with some
protections off (SUT_DISABLE, `--sut-disable`), and any can be switched at run time through
the control endpoint of every service that holds one, which is what lets the matrix disable
one protection, run its scenarios and turn it back on without restarting anything. The
endpoint asks for the run's control secret (the stack's `control_secret`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from harness import topology
from harness.errors import HarnessError
from harness.view import StackView

TABLE_FILE = Path(__file__).resolve().parent.parent / "services" / "shop" / "protections.py"
CONTROL_PATH = "/_control/protections"
SWITCH_TIMEOUT_S = 5.0


@cache
def _table_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shop_protections_table", TABLE_FILE)
    if spec is None or spec.loader is None:
        raise HarnessError(f"the protections table is missing ({TABLE_FILE.name}): reinstall the harness")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def table() -> dict[str, Any]:
    """name -> Protection (name, services, what, at_start), in the table's order."""
    return dict(_table_module().PROTECTIONS)


def names() -> tuple[str, ...]:
    return tuple(table())


def checked(given: Iterable[str]) -> tuple[str, ...]:
    """Names from the command line (repeated or comma-separated), each one known: otherwise one
    line naming the unknown one and where the list is."""
    found = tuple(dict.fromkeys(n.strip() for item in given for n in item.split(",") if n.strip()))
    unknown = [n for n in found if n not in table()]
    if unknown:
        raise HarnessError(f"unknown protection {unknown[0]!r}: `chaos protections` lists them "
                           f"({', '.join(table())})")
    return found


def services() -> tuple[str, ...]:
    """The services that hold a protection, hence a control endpoint."""
    return tuple(dict.fromkeys(s for p in table().values() for s in p.services))


def switch(stack: StackView, disabled: Iterable[str]) -> None:
    """Makes exactly `disabled` the protections that are off, in every service that holds one,
    and returns once each service says so."""
    wanted = sorted(checked(disabled))
    headers = topology.control_headers(stack.control_secret)
    for service in services():
        url = f"{stack.endpoint(service).url}{CONTROL_PATH}"
        try:
            response = httpx.put(url, json={"disabled": wanted}, headers=headers, timeout=SWITCH_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise HarnessError(f"{service} did not take the protection switch ({type(exc).__name__}): "
                               "is the stack up?") from None
        if response.status_code != 200 or sorted(response.json().get("disabled", [])) != wanted:
            raise HarnessError(f"{service} refused the protection switch {wanted}: {response.text[:200]}")


def disabled_now(stack: StackView) -> dict[str, list[str]]:
    """Per service, the protections off right now (None for a service that did not answer)."""
    found: dict[str, Any] = {}
    headers = topology.control_headers(stack.control_secret)
    for service in services():
        try:
            response = httpx.get(f"{stack.endpoint(service).url}{CONTROL_PATH}", headers=headers, timeout=2.0)
            found[service] = response.json().get("disabled")
        except (httpx.HTTPError, ValueError, KeyError):
            found[service] = None
    return found


def off_anywhere(stack: StackView) -> list[str]:
    """Every protection that is off in at least one service, in the table's order."""
    off = {name for names_ in disabled_now(stack).values() for name in (names_ or [])}
    return [name for name in table() if name in off]
