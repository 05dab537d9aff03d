"""Root cause 3: a product row with NULL fields reaches code that assumes values.

Prescribed: null-safe handling: the bad record is quarantined, the rest of the catalogue is
served, no internal error reaches the customer, and orders for other products go on. The
manual's line belongs to the failure, so it must appear only in the fragile shop.
"""

import time

import pytest
from conftest import ledger_verdict

from harness import runbook
from harness.datastores import connect_database
from harness.guards import expect

INVENTORY_NULL = runbook.log_line("inventory_null_pointer")
CORRUPTED = "sku-5"


def catalogue(stack) -> dict[str, tuple[str, int]]:
    """The catalogue as the database holds it (name, price per SKU), read before the fault."""
    with connect_database(stack) as conn:
        return {sku: (name, price) for sku, name, price in
                conn.execute("SELECT sku, name, price_cents FROM products ORDER BY sku").fetchall()}


@pytest.mark.chaos(root_cause="inventory_null_pointer",
                   guards={"quarantine": "null_safe_handling"},
                   protects={"quarantine": "null_quarantine"})
def test_inventory_null(stack, chaos, shop, vendor, inventory, history, scenario_record, steady, evidence):
    steady("before")
    whole = catalogue(stack)
    rest = {sku: row for sku, row in whole.items() if sku != CORRUPTED}
    injected = time.time()
    with chaos.inject("data.null_fields", target="postgres", sku=CORRUPTED, fields=["price_cents", "name"]):
        listing = inventory.products()
        one_by_one = {sku: inventory.http.get(f"/products/{sku}") for sku in whole}
        order = shop.place_order(sku="sku-2")
    steady("after")
    events = stack.logs("inventory_service", since=injected)
    served = [p.get("sku") for p in listing.json()] if listing.status_code == 200 else []
    listed = {p.get("sku"): (p.get("name"), p.get("price_cents")) for p in listing.json()} \
        if listing.status_code == 200 else {}
    read = {sku: (r.json().get("name"), r.json().get("price_cents")) if r.status_code == 200 else r.status_code
            for sku, r in one_by_one.items()}
    scenario_record.update(products_status=listing.status_code, served=served,
                           one_by_one={sku: r.status_code for sku, r in one_by_one.items()})

    expect("quarantine", listing.status_code == 200, f"the catalogue answered {listing.status_code}")
    expect("quarantine", all(r.status_code < 500 for r in one_by_one.values()),
           f"a product read answered an internal error: {scenario_record['one_by_one']}")
    expect("quarantine", "sku-5" not in served and {"sku-1", "sku-2"} <= set(served), f"served {served}")
    expect("quarantine", any(e.get("event") == "product_quarantined" for e in events), "no quarantine recorded")
    expect("quarantine", CORRUPTED in whole and rest and all(listed.get(sku) == row for sku, row in rest.items()),
           f"the listing lost or altered other products while {CORRUPTED} was corrupted: "
           f"database {rest}, listed {listed}")
    expect("quarantine", all(read[sku] == row for sku, row in rest.items()),
           f"products read one by one while {CORRUPTED} was corrupted (database {rest}): {read}")
    expect("quarantine", not any(e.get("event") == INVENTORY_NULL for e in events), "the null pointer line was logged")
    expect("quarantine", order.status == 201, f"an order for another product failed: {order.status}")
    ledger_verdict(evidence, history)
