"""Root cause 5: the disk of node-A fills up (97 %).

Prescribed: an alert with the manual's line within seconds of the disk filling up, writes shed
cleanly (503 with Retry-After, nothing half-written) while reads are served, both those of the
database and those of node-A's full volume (an order's receipt), and after the first response
of the manual (delete the files that filled the disk) a recovery alert and writes accepted again.
"""

import time

import pytest
from conftest import ledger_verdict

from harness import runbook
from harness.guards import expect
from harness.polling import wait_for
from scenarios.shop import first_response

DISK_LOW = runbook.log_line("disk_full_node_a")
DETECT_BUDGET_S = 5.0  # from the fill to the alert, and to the manual's line
WAIT_S = DETECT_BUDGET_S + 2.0  # how long to watch: a late alert is measured, not missed
ALERT_PERCENT = 90.0  # the manual's threshold
DATA_MOUNT = "/data"  # node-A's data volume in the gateway's container (harness.faults.disk)


def filled_at(chaos) -> float:
    """When the fill was applied: the fault journal's inject time (the fill starts then; it has
    landed a moment later), the clock the detection budget runs on."""
    return next(e["ts"] for e in chaos.journal.entries if e["action"] == "inject" and e["fault"] == "disk.fill")


# The steady state after the heal follows the manual's first response (the fill file deleted),
# so it proves that cleaning the disk brings writes back. The scenario's guardrail: the fault
# fills to 97 %; a full disk would break node-A for real.
@pytest.mark.chaos(root_cause="disk_full_node_a",
                   guards={"disk_alert": "disk_alert", "shed_writes": "shed_writes", "df_confirms": "df_check",
                           "alert_on_recovery": "alert_on_recovery", "steady_state_after": "clean_disk"},
                   protects={"disk_alert": "disk_monitor", "shed_writes": "write_shedding",
                             "alert_on_recovery": "recovery_alerts"}, preconditions=("df_confirms",),
                   abort_if="disk>=99.5")
def test_disk_fill_node_a(stack, chaos, shop, vendor, sink, history, scenario_record, steady, evidence):
    steady("before")
    before = shop.place_order()
    with chaos.inject("disk.fill", target="api_gateway", percent=97):
        filled = filled_at(chaos)
        lines, _ = wait_for(lambda: [e for e in stack.logs("api_gateway", since=filled) if e.get("event") == DISK_LOW],
                            WAIT_S, 0.2)
        firing, _ = wait_for(lambda: [a for a in sink.alerts("firing") if "disk" in a["chaos"]["what"].lower()],
                             max(0.0, filled + WAIT_S - time.time()), 0.2)
        write = shop.place_order()
        read = shop.order(before.order_id)
        receipt = shop.receipt(before.order_id)
        # The manual's first response to its disk line: `df -h` on node-A, beside what the monitor saw.
        df = stack.docker_container("api_gateway").exec_run(["df", "-P", DATA_MOUNT]).output.decode(errors="replace")
        monitored = shop.health().get("disk_used_percent")
    cleaned = time.time()  # the manual's first response: the fill file is deleted on heal
    resolved, _ = wait_for(lambda: [a for a in sink.alerts("resolved") if a["ts"] >= cleaned], 10, 0.2)
    recovery_s = steady("after")
    logged_s = lines[0]["ts"] - filled if lines else None
    alerted_s = firing[0]["ts"] - filled if firing else None
    scenario_record.update(time_to_detect_s=None if alerted_s is None else round(alerted_s, 2),
                           time_to_log_s=None if logged_s is None else round(logged_s, 2),
                           write_status=write.status, receipt_status=receipt.status_code,
                           recovery_s=round(recovery_s, 2))

    expect("disk_alert", logged_s is not None and logged_s <= DETECT_BUDGET_S,
           f"the manual's disk line was not logged within {DETECT_BUDGET_S}s of the fill "
           f"({'never' if logged_s is None else f'{logged_s:.2f}s'})")
    expect("disk_alert", firing and firing[0]["chaos"]["where"] == "node-A", f"no disk alert from node-A: {firing}")
    expect("disk_alert", alerted_s is not None and alerted_s <= DETECT_BUDGET_S,
           f"node-A's alert came {alerted_s:.2f}s after the fill (budget {DETECT_BUDGET_S}s)" if alerted_s is not None
           else "no alert")
    expect("shed_writes", write.status == 503 and write.headers.get("retry-after"),
           f"a write while the disk was full answered {write.status} {write.body}")
    # Shedding writes only: reads, from the database and from node-A's full volume, go on.
    expect("shed_writes", read and read.get("status") == "PAID", f"a read while the disk was full failed: {read}")
    stored = receipt.json() if receipt.status_code == 200 else {}
    expect("shed_writes", receipt.status_code == 200 and stored.get("id") == before.order_id
           and stored.get("status") == "PAID",
           f"the receipt on node-A's full volume was not served: {receipt.status_code} {receipt.text[:200]}")
    expect("alert_on_recovery", resolved, "no recovery alert after the disk was cleaned")
    used = first_response.df_used_percent(df)
    first_response.performed(scenario_record, "df_check", f"df -P {DATA_MOUNT} on node-A",
                             f"{used} % used; the monitor reported {monitored} %")
    gap = first_response.df_gap(used, monitored, ALERT_PERCENT)
    expect("df_confirms", gap is None, f"df on node-A does not confirm the disk alert: {gap}")
    ledger_verdict(evidence, history)
