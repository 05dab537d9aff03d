"""Every payment vendor of the shop at once: their charges read together, a fault on all of them.

The shop has two vendors (multi-vendor: the gateway fails over to the second while the first's
breaker is open), so "was this order charged, and how often" is a question for every vendor's
own records together: idempotency holds at one vendor only, and an order charged once at each
was charged twice. A vendor is a service of the topology with the `vendor` capability (the
simulator's control API), the topology's first one the primary.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.faults import Chaos
from harness.view import StackView
from scenarios.shop.clients import VendorClient

VENDOR = "vendor"  # the capability of a payment vendor simulator


@dataclass
class Vendors:
    """One VendorClient per vendor service, by service name, the primary first."""

    clients: dict[str, VendorClient]

    @classmethod
    def of(cls, stack: StackView, primary: VendorClient | None = None) -> Vendors:
        """Clients of every vendor of the stack (`primary`: an existing client of the first)."""
        names = stack.topology.with_capability(VENDOR)
        clients = {name: VendorClient(stack.endpoint(name).url, stack.control_secret) for name in names
                   if primary is None or name != primary.SERVICE}
        if primary is not None:
            clients = {primary.SERVICE: primary, **clients}
        return cls(clients)

    def charges(self) -> list[dict[str, Any]]:
        """Every vendor's charges since its mark, each with the `vendor` (service) that made it."""
        return [charge | {"vendor": name} for name, client in self.clients.items()
                for charge in client.charges().values()]

    def per_order(self) -> Counter[str]:
        """How many charges each order has, summed over every vendor."""
        return Counter(charge["order_id"] for charge in self.charges())

    def mark(self) -> None:
        for client in self.clients.values():
            client.mark()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@contextlib.contextmanager
def at_every_vendor(chaos: Chaos, stack: StackView, fault: str, **params: Any) -> Iterator[None]:
    """The fault injected at every vendor, healed at all of them on exit: a payment outage the
    failover cannot route around (an order declined by its issuer is declined at any vendor)."""
    with contextlib.ExitStack() as faults:
        for name in stack.topology.with_capability(VENDOR):
            faults.enter_context(chaos.inject(fault, target=name, **params))
        yield
