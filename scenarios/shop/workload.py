"""The shop's workload for harness.load: its customers (locustfile.py next to this file), each
with a valid customer token minted from the stack's auth_service."""

from __future__ import annotations

from pathlib import Path

from harness.load import Workload
from harness.view import StackView
from scenarios.shop.clients import mint_token

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def customers(stack: StackView) -> Workload:
    """Customers placing orders through the edge, as the storm scenario puts them on the shop."""
    return Workload(LOCUSTFILE, {"CHAOS_TOKEN": mint_token(stack)})
