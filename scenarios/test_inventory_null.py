"""Root cause 3: a product row with NULL fields reaches code that assumes values.

Prescribed: null-safe handling: the bad record is quarantined, the rest of the catalogue is
served, no internal error reaches the customer, and orders for other products go on. The
manual's line belongs to the failure, so it must appear only in the fragile shop.
"""

import time

import pytest
from conftest import ledger_verdict, steady_state

INVENTORY_NULL = "Unexpected null pointer exception in inventory service."


@pytest.mark.chaos(root_cause="inventory_null_pointer", runbook=["null_safe_handling", "no_500_to_clients"])
def test_inventory_null(stack, chaos, shop, vendor, inventory, history, scenario_record):
    steady_state(shop, "before")
    injected = time.time()
    with chaos.inject("data.null_fields", target="postgres", sku="sku-5", fields=["price_cents", "name"]):
        listing = inventory.products()
        order = shop.place_order(sku="sku-2")
    steady_state(shop, "after")
    events = stack.logs("inventory_service", since=injected)
    served = [p.get("sku") for p in listing.json()] if listing.status_code == 200 else []
    scenario_record.update(products_status=listing.status_code, served=served)

    assert listing.status_code == 200, f"[no_500] the catalogue answered {listing.status_code}"
    assert "sku-5" not in served and {"sku-1", "sku-2"} <= set(served), f"[quarantine] served {served}"
    assert any(e.get("event") == "product_quarantined" for e in events), "[quarantine] no quarantine recorded"
    assert not any(e.get("event") == INVENTORY_NULL for e in events), "[null_safe] the null pointer line was logged"
    assert order.status == 201, f"[other_products] an order for another product failed: {order.status}"
    ledger_verdict(shop, vendor, history)
