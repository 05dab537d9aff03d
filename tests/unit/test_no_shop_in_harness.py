"""harness/ is the harness for any system: the shop (services/shop, its package scenarios/shop) is
one example of a system, and the core must not know it by name, or a system of your own inherits
the shop's clients, services and checks. The shop's names are looked for in every module of
harness/; a module that implements a capability a topology declares keeps the protocol of that
capability (the names in it are the contract a cooperating service fulfils), and is allowed
exactly the names listed with it, each with its reason."""

from __future__ import annotations

import re
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# The shop's names: its clients, its services, and its datastores used as service names.
SHOP_NAMES = {
    "ShopClient": r"\bShopClient\b", "VendorClient": r"\bVendorClient\b", "SinkClient": r"\bSinkClient\b",
    "InventoryClient": r"\bInventoryClient\b", "mint_token": r"\bmint_token\b",
    "api_gateway": r"api_gateway", "auth_service": r"auth_service", "payment_gateway": r"payment_gateway",
    "alert_sink": r"alert_sink", "inventory": r"inventory",
    "postgres": r"[\"']postgres[\"']", "rabbitmq": r"[\"']rabbitmq[\"']",
}

ALLOWED: dict[str, tuple[set[str], str]] = {
    "faults/auth.py": ({"auth_service"}, "implements the `auth` and `clock_skew` capabilities: the token "
                       "verifier's protocol; records written before faults named their service name it"),
    "faults/http.py": ({"payment_gateway"}, "implements the `vendor` capability (the vendor simulator's FaultSpec); "
                       "records written before faults named their service name it"),
    "faults/message.py": ({"inventory"}, "implements `order_events`: the capability is the shop's exchange and its "
                          "work queue `inventory.order-events`"),
    "faults/data.py": ({"inventory"}, "implements `products`: the inventory's products table"),
    "faults/disk.py": ({"api_gateway"}, "implements `disk`; records written before faults named their service "
                       "were all on the shop's node-A"),
    "images.py": ({"postgres", "rabbitmq"}, "names of the base images the harness builds (harness/dockerfiles), "
                  "which any topology may use: image names, not service names"),
    "adopt.py": ({"postgres", "rabbitmq"}, "well-known image families recognised in anyone's compose file"),
    # Known debt, not a capability: the operations manual the reports and `chaos runbook` verify
    # guards against is the shop's, and it is not yet given per system.
    "runbook.py": ({"api_gateway", "auth_service", "payment_gateway", "inventory", "rabbitmq", "postgres"},
                   "the shop's operations manual (ROOT_CAUSES), not yet per system"),
}


def shop_names_in(root: Path) -> dict[str, set[str]]:
    """Per module of `root` (relative path), the shop's names it holds."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        names = {name for name, pattern in SHOP_NAMES.items() if re.search(pattern, text)}
        if names:
            found[path.relative_to(root).as_posix()] = names
    return found


def test_harness_holds_no_shop_name_beyond_its_capabilities():
    """Catches the shop's clients, checker, services or datastores coming back into harness/ (a
    client or fixture of the shop in the core, a service found by the name "postgres" rather than
    through the topology), and an allowed module growing names beyond those of its capability."""
    beyond = {module: names - ALLOWED.get(module, (set(), ""))[0] for module, names in shop_names_in(HARNESS).items()}
    assert {module: names for module, names in beyond.items() if names} == {}


def test_the_allow_list_names_only_what_is_there():
    """Catches an allow-list entry left behind once its module dropped a name (or was moved):
    a stale entry would let the name come back unnoticed."""
    found = shop_names_in(HARNESS)
    stale = {module: names - found.get(module, set()) for module, (names, _) in ALLOWED.items()}
    assert {module: names for module, names in stale.items() if names} == {}
