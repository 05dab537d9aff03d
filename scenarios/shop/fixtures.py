"""The shop's pytest fixtures: its customer client and its observers, fresh for every test.

Registered for scenarios/ and tests/ by the repository's root conftest.py (pytest takes
`pytest_plugins` only there); the harness's own fixtures (stack, chaos, history, ...) come from
its plugin (harness.plugin).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from harness.history import History
from harness.plugin import is_external
from harness.view import StackView
from scenarios.shop.clients import ShopClient, SinkClient, VendorClient, mint_token
from scenarios.shop.vendors import Vendors

Observer = TypeVar("Observer", VendorClient, SinkClient)


@pytest.fixture
def shop(stack: StackView, history: History) -> Iterator[ShopClient]:
    """The customer's client, through the edge proxy."""
    client = ShopClient(stack.edge_url, history, token=mint_token(stack))
    yield client
    client.close()


def _fresh(client: Observer, config: pytest.Config) -> Iterator[Observer]:
    """An observer client that reads only what the test caused: marked at the test's start.
    A stack this session started is emptied first too (the vendor's idempotency table and
    faults with it); a kept one is only marked, so the operator's faults, the vendor's memory
    of charges (a later settle must replay, not charge again) and the game day's evidence stay."""
    if is_external(config):
        client.mark()
    else:
        client.reset()
    yield client
    client.close()


@pytest.fixture
def vendor(stack: StackView, pytestconfig: pytest.Config) -> Iterator[VendorClient]:
    """The payment vendor's control API, journal and charges (since the test's start)."""
    yield from _fresh(VendorClient.of(stack), pytestconfig)


@pytest.fixture
def vendors(stack: StackView, vendor: VendorClient, pytestconfig: pytest.Config) -> Iterator[Vendors]:
    """Every payment vendor (the primary is `vendor`), each read since the test's start the same way."""
    group = Vendors.of(stack, primary=vendor)
    others = [client for client in group.clients.values() if client is not vendor]
    for client in others:
        client.mark() if is_external(pytestconfig) else client.reset()
    yield group
    for client in others:
        client.close()


@pytest.fixture
def sink(stack: StackView, pytestconfig: pytest.Config) -> Iterator[SinkClient]:
    """The alert and mail sink (what arrived since the test's start)."""
    yield from _fresh(SinkClient.of(stack), pytestconfig)
