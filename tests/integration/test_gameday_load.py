"""A game day under load, driven from the CLI as a person would: `chaos up`, `chaos load start`,
a fault injected and healed while the load runs, `chaos load stop`, a second load left running,
`chaos down`. The game-day report then holds the load's orders judged by the shop's ledger (the
database, the vendor's charges, the mails), the SLO figures and the impact per fault window, and
nothing of the run is left: no load process, no container, no load record."""

import json
import re
import time

import pytest

from harness import gameday_load, ownership
from harness import state as harness_state
from harness.engine import connect
from harness.load import HISTORY_FILE
from harness.ownership import RUN_LABEL
from harness.polling import wait_for
from tests.conftest import BIN, run

pytestmark = pytest.mark.integration

CHAOS = str(BIN / "chaos")


@pytest.fixture
def state(tmp_path, monkeypatch):
    """This test's own state directory (the commands it runs inherit the variable)."""
    path = tmp_path / "state"
    monkeypatch.setenv(harness_state.STATE_ENV, str(path))
    return path


def _answers(run_id: str, state) -> list[dict]:
    path = gameday_load.load_dir(run_id, state) / HISTORY_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines[:-1]]  # the last line may be half-written


def _wait_for(check, timeout_s: float, what: str):
    """harness.polling.wait_for, failing the test with `what` when the time runs out."""
    found, _ = wait_for(check, timeout_s, 0.2)
    assert found, f"{what} within {timeout_s}s"
    return found


def _one_line(result, says: str) -> None:
    assert result.returncode == 2 and says in result.stderr, result
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _load_processes(record: dict) -> list[str]:
    return [t for t in (record["runner"], record["locust"]) if t and ownership.owner_alive(t)]


def test_a_game_day_under_load_reports_the_ledger_slo_and_impact_and_leaves_nothing(state, tmp_path):
    """Catches a load that `chaos load stop` or `chaos down` leaves running, a second start beside
    a running load, a stop that claims a load when none runs, and a game-day report without the
    load's orders, their ledger verdict, the SLO figures or the impact of each fault window."""
    # One vendor and its outage: with failover on, the second vendor would take the orders the
    # fault is meant to leave pending.
    up = run([CHAOS, "up", "--sut-disable", "vendor_failover"], timeout=300)
    assert up.returncode == 0, up.stderr
    run_id = re.search(r"^up: run (\S+)", up.stdout, re.M).group(1)
    reports = tmp_path / "reports"
    try:
        started = run([CHAOS, "load", "start", "--users", "2", "--rate", "2", "--duration", "120"])
        assert started.returncode == 0 and f"load started on run {run_id}" in started.stdout, started
        first = gameday_load.read(run_id, state)
        _one_line(run([CHAOS, "load", "start"]), f"a load already runs on run {run_id}")
        _wait_for(lambda: len(_answers(run_id, state)) >= 3, 30, "the load's first orders")

        injected = run([CHAOS, "inject", "http.status", "--target", "payment_gateway", "--set", "status=503"])
        assert injected.returncode == 0, injected.stderr
        since = time.time()
        # The resilient shop takes orders as PAYMENT_PENDING while the vendor refuses: the load saw the fault.
        _wait_for(lambda: [a for a in _answers(run_id, state) if a["invoked"] >= since and a["status"] == 202
                           and a["order_status"] == "PAYMENT_PENDING"], 30, "an order taken as pending")
        assert run([CHAOS, "heal", "--all"]).returncode == 0
        healed = time.time()
        _wait_for(lambda: [a for a in _answers(run_id, state) if a["invoked"] >= healed and a["status"] == 201],
                  30, "an order paid at once after the heal")

        stopped = run([CHAOS, "load", "stop"])
        assert stopped.returncode == 0 and f"stopped the load on run {run_id}" in stopped.stdout, stopped
        assert _load_processes(first) == []
        _one_line(run([CHAOS, "load", "stop"]), "no load is running in this checkout")

        again = run([CHAOS, "load", "start", "--users", "1", "--rate", "1", "--duration", "120"])
        assert again.returncode == 0, again
        second = gameday_load.read(run_id, state)
        assert _load_processes(second)  # running when `chaos down` comes
        down = run([CHAOS, "down", "--reports", str(reports)], timeout=300)
        assert down.returncode == 0, down.stderr
    finally:
        gameday_load.stop(run_id, state)
        run([CHAOS, "down", "--run", run_id, "--reports", str(tmp_path / "cleanup")])

    assert _load_processes(second) == []
    assert connect().containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}) == []
    assert gameday_load.recorded_runs(state) == [] and not gameday_load.load_dir(run_id, state).exists()

    entry = json.loads((reports / run_id / "report.json").read_text())["scenarios"][0]
    figures = entry["figures"]
    assert entry["name"] == "game_day" and entry["outcome"] == "passed", entry["reason"]
    assert [(load["users"], load["rate"]) for load in figures["loads"]] == [(2, 2.0), (1, 1.0)]
    ledger = figures["ledger"]
    assert ledger["anomalies"] == {} and ledger["orders"] == figures["slo"]["whole_load"]["orders"] > 0
    (window,) = figures["impact_per_fault"]
    assert (window["fault"], window["target"]) == ("http.status", "payment_gateway") and window["orders"] > 0
    assert figures["slo"]["during_faults"]["orders"] == window["orders"]
    assert entry["impact"]["during_fault"]["statuses"].get("202", 0) > 0  # the pending orders, in the report
