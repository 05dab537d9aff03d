"""Root cause 5: the disk of node-A fills up (97 %).

Prescribed: an alert with the manual's line within seconds, writes shed cleanly (503 with
Retry-After, nothing half-written) while reads are served, and after the first response of the
manual (delete the files that filled the disk) a recovery alert and writes accepted again.
"""

import time

import pytest
from conftest import ledger_verdict, steady_state

from harness.timeline import wait_for

DISK_LOW = "Disk space is critically low on server node-A."
DETECT_BUDGET_S = 5.0


# The scenario's guardrail: the fault fills to 97 %; a full disk would break node-A for real.
@pytest.mark.chaos(root_cause="disk_full_node_a",
                   runbook=["disk_alert", "shed_writes", "alert_on_recovery", "clean_disk"], abort_if="disk>=99.5")
def test_disk_fill_node_a(stack, chaos, shop, vendor, sink, history, scenario_record):
    steady_state(shop, "before")
    before = shop.place_order()
    injected = time.time()
    with chaos.inject("disk.fill", target="api_gateway", percent=97):
        detected, ttd = wait_for(lambda: any(e.get("event") == DISK_LOW
                                             for e in stack.logs("api_gateway", since=injected)), DETECT_BUDGET_S, 0.2)
        firing, _ = wait_for(lambda: sink.alerts("firing"), DETECT_BUDGET_S, 0.2)
        write = shop.place_order()
        read = shop.order(before.order_id)
    cleaned = time.time()  # the manual's first response: the fill file is deleted on heal
    resolved, _ = wait_for(lambda: [a for a in sink.alerts("resolved") if a["ts"] >= cleaned], 10, 0.2)
    recovery_s = steady_state(shop, "after")
    scenario_record.update(time_to_detect_s=round(ttd, 2), write_status=write.status, recovery_s=round(recovery_s, 2))

    assert detected, f"[disk_alert] the manual's disk line was not logged within {DETECT_BUDGET_S}s"
    assert firing and firing[0]["chaos"]["where"] == "node-A", f"[disk_alert] no alert from node-A: {firing}"
    assert write.status == 503 and write.headers.get("retry-after"), \
        f"[shed_writes] a write while the disk was full answered {write.status} {write.body}"
    assert read and read.get("status") == "PAID", f"[reads_served] a read while the disk was full failed: {read}"
    assert resolved, "[alert_on_recovery] no recovery alert after the disk was cleaned"
    ledger_verdict(shop, vendor, history)
