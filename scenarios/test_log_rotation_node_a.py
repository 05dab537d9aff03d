"""Root cause 5, its permanent fix 5: log rotation on node-A.

A log on node-A grows fast, by more than its volume's alert threshold (30 MiB into a 32 MiB
volume). Prescribed: logs are rotated and archived automatically, so the disk never reaches the
90 % alert. Judged from outside: df inside node-A while the log grows, the alert sink, the
flood's files on node-A's volume (rotated ones compressed, a bounded number of them) and the
shop's answers to orders placed throughout. With log_rotation off the same flood takes the disk
past 90 % and the disk alert fires.
"""

import time

import pytest
from conftest import ledger_verdict

from harness.errors import HarnessError
from harness.guards import expect
from harness.polling import wait_for
from scenarios.shop.workload import retry_until_answered

MOUNT = "/data"
THRESHOLD = 90.0  # the manual's alert line: the log must never take node-A there
TOTAL_MIB, RATE_MIB_S = 30.0, 4.0  # ~94 % of node-A's 32 MiB volume if nothing rotates
FLOOD_BUDGET_S = TOTAL_MIB / RATE_MIB_S + 10.0  # the flood's own time, and slack for a busy machine
MAX_ORDERS = 200  # one order per turn of the watch: bounded in count as well as in time
ORDER_BUDGET_S = 8.0  # one customer's retries of an order (same key) until it has a final answer
ALERT_WAIT_S = 2.0  # after the flood: an alert still on its way is seen, not missed
KEPT = 4  # rotated files the shop keeps (services/shop/log_rotation.py KEEP)


def used_percent(container) -> float:
    """df inside node-A: the outside's view of its volume."""
    result = container.exec_run(["df", "--output=size,used", "-B1", MOUNT])
    if result.exit_code != 0:
        raise HarnessError(f"df failed on node-A: {result.output.decode(errors='replace').strip()}")
    size, used = result.output.decode().split()[-2:]
    return 100.0 * int(used) / int(size)


def compressed(container, path: str) -> bool:
    """Whether gzip inside node-A finds the file a whole gzip archive."""
    return container.exec_run(["gzip", "-t", path]).exit_code == 0


@pytest.mark.chaos(root_cause="disk_full_node_a",
                   guards={"flooded": None, "log_rotation": "log_rotation"},
                   protects={"log_rotation": "log_rotation"},
                   preconditions=("flooded",),
                   abort_if="disk>=99.5")
def test_log_rotation_node_a(stack, chaos, shop, sink, history, scenario_record, steady, evidence):
    steady("before")
    node_a = stack.docker_container("api_gateway")
    peak, statuses = used_percent(node_a), []
    with chaos.inject("disk.log_flood", target="api_gateway", total_mib=TOTAL_MIB, rate_mib_s=RATE_MIB_S) as flood:
        flooded = time.time()
        deadline = time.monotonic() + FLOOD_BUDGET_S
        progress = flood.progress()
        while not progress["done"] and time.monotonic() < deadline and len(statuses) < MAX_ORDERS:
            peak = max(peak, used_percent(node_a))
            attempts = retry_until_answered(shop, f"log-rotation-{len(statuses)}-{flood.flood_id}", ORDER_BUDGET_S)
            statuses.append(attempts[-1].status if attempts else None)
            progress = flood.progress()
        peak = max(peak, used_percent(node_a))
        files = flood.files()
        rotated = [f for f in files if not f.endswith(".log")]
        plain = [f for f in rotated if not (f.endswith(".gz") and compressed(node_a, f))]
        firing, _ = wait_for(lambda: [a for a in sink.alerts("firing") if a["ts"] >= flooded
                                      and "disk" in a["chaos"]["what"].lower()], ALERT_WAIT_S, 0.2)
    steady("after")
    scenario_record.update(peak_used_percent=round(peak, 1), flood_written_mib=round(progress["written"] / 2**20, 1),
                           rotated_files=len(rotated), orders_during_flood=len(statuses))

    expect("flooded", progress["done"] and progress["written"] == int(TOTAL_MIB * 2**20),
           f"the log did not grow by its {TOTAL_MIB} MiB within {FLOOD_BUDGET_S:.0f}s: {progress}")
    expect("log_rotation", peak < THRESHOLD,
           f"node-A's disk reached {peak:.1f}% used while its log grew (alert line {THRESHOLD:.0f}%)")
    expect("log_rotation", not firing, f"a disk alert fired while the log grew: {firing[:1]}")
    expect("log_rotation", rotated and not plain and len(rotated) <= KEPT,
           f"the log's rotated files on node-A are not {KEPT} or fewer gzip archives: {files}")
    # Rotation keeps the disk usable: without it the writes of a disk past 90 % are shed (503).
    expect("log_rotation", statuses and all(status == 201 for status in statuses),
           f"orders while the log grew were not all served (each one's last answer): {statuses}")
    ledger_verdict(evidence, history)
