"""The all-off proof: against the fragile shop (every protection off at once) each scenario
fails, and for the reason it guards (its [guard] tag in the failure), while the resilient shop
passes them all. That every guard can fail on its own is the mutation matrix's proof
(test_matrix.py); this one shows the scenarios also catch a shop with nothing left."""

import json

import pytest

from harness.runbook import declared
from tests.conftest import BIN, run

pytestmark = pytest.mark.integration

# The guard each scenario must trip on the fragile shop: the protection it exists to prove.
GUARDS = {
    "payment_outage": "[fallback_202]",
    "payment_latency": "[one_order_per_request]",
    "db_connection_timeout": "[db_503]",
    "db_outage": "[db_503]",
    "pool_exhaustion": "[pool_503]",
    "inventory_null": "[quarantine]",
    "service_restart": "[restart_safe]",  # the redelivered event of the order applied before mails again
    "malformed_messages": "[valid_traffic]",  # the first bad message stops the fragile consumer
    "dlq_redrive": "[redrive]",
    "disk_fill_node_a": "[disk_alert]",
    "log_rotation_node_a": "[log_rotation]",  # nothing rotates: the log takes the disk past 90 %
    "invalid_token": "[reject_invalid]",
    "auth_outage": "[fail_closed]",
    "clock_skew": "[beyond_leeway]",  # all off: no time check at all, so every skew gets through
    "rabbitmq_outage": "[outbox]",
    "broker_blackhole": "[delivered]",
    # No deadline: the request waits out the cut and writes PAID; the customer's retry is a new
    # order (no idempotency), charged again.
    "charge_then_db_cut": "[ledger]",
    "reservation_reply_lost": "[ledger]",  # a new order per retry: duplicate_order, stock held for the REJECTED one
    "mail_then_commit_fails": "[steady_state_after]",  # the fragile consumer stops at the failed commit for good
    "settler_gives_up": "[pending_accepted]",
    "vendor_rate_limit": "[retry_after_honoured]",  # every request calls once, 0.4 s after the last 429
    "worker_auto_recovery": "[restarted]",  # nothing restarts the killed consumer
    "storm": "[slo]",
    "db_crash_keeps_orders": "[acked_kept]",  # commits acknowledged before the log: the crash loses them
    "vendor_failover": "[failover]",  # all off: no breaker, so nothing fails over; every order FAILED
    "traffic_shaping": "[shed]",  # nothing sheds: no 429, no Retry-After
    # The fragile shop validates no variable at all: one per service shows it; the resilient run
    # proves each of the four is validated.
    "rabbitmq_config_missing[api_gateway-RABBITMQ_HOST]": "[refuse_to_start]",
    "rabbitmq_config_missing[inventory_service-RABBITMQ_HOST]": "[refuse_to_start]",
}


FRAGILE_ONLY = "not (rabbitmq_config_missing and (RABBITMQ_PORT or RABBITMQ_USER or RABBITMQ_PASS))"


def _run_scenarios(tmp_path, mode):
    # The fragile shop stays broken after some scenarios (a consumer that stopped for good), so
    # each of its scenarios gets a fresh stack; otherwise the next one fails its steady state.
    fresh = ["--stack-per-scenario", "-k", FRAGILE_ONLY] if mode == "fragile" else []
    result = run([str(BIN / "pytest"), "scenarios/", f"--sut-mode={mode}", f"--chaos-reports={tmp_path}",
                  *fresh, "-p", "no:cacheprovider", "-q"], timeout=2400)
    report = json.loads((tmp_path / "latest" / "report.json").read_text())
    return result, {s["name"]: s for s in report["scenarios"]}


def test_every_scenario_has_a_guard():
    names = {name for scenarios in declared().values() for name, _ in scenarios}
    assert names == {name.split("[")[0] for name in GUARDS}


def test_every_scenario_fails_on_the_fragile_shop_for_the_guarded_reason(tmp_path):
    result, scenarios = _run_scenarios(tmp_path, "fragile")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert set(scenarios) == set(GUARDS), f"scenarios run: {sorted(scenarios)}"
    wrong = {name: (s["outcome"], (s["reason"] or "")[:300]) for name, s in scenarios.items()
             if s["outcome"] != "failed" or GUARDS[name] not in (s["reason"] or "")}
    assert not wrong, f"scenarios that did not fail on their guard: {wrong}"


def test_every_scenario_passes_on_the_resilient_shop(tmp_path):
    result, scenarios = _run_scenarios(tmp_path, "resilient")
    failed = {name: (s["reason"] or "")[:300] for name, s in scenarios.items() if s["outcome"] != "passed"}
    assert result.returncode == 0 and not failed, f"{failed}\n{result.stdout[-2000:]}"
    assert scenarios["payment_outage"]["figures"]["breaker_windows"]
