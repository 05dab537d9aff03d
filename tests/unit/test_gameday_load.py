"""A game day's load: its record (one load per run, stopped by token, reaped with its run), the
history it leaves, and the figures the game-day report derives from it (harness.load_figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from harness import detached, gameday_load, load_figures, ownership, topology
from harness.errors import HarnessError
from harness.load import history_of

RUN = "20260101T000000-0a0b0c"


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_STATE_DIR", str(tmp_path))
    return tmp_path


def op(invoked, latency_s, outcome="ok", status=201):
    return {"invoked": invoked, "latency_s": latency_s, "outcome": outcome, "status": status}


WINDOWS = [{"fault": "http.status", "target": "payment_gateway", "start": 10.0, "end": 20.0},
           {"fault": "network.latency", "target": "inventory", "start": 15.0, "end": None}]


def test_per_fault_counts_only_the_orders_placed_inside_each_window():
    """Catches orders placed before a fault counted against it, a window never healed treated as
    empty (it runs to the end), and an unanswered order counted as served or fast."""
    ops = [op(5, 0.1), op(12, 0.2), op(16, 4.0, "fail", 503), op(18, None, "unknown", None), op(30, 0.1)]
    first, second = load_figures.per_fault(ops, WINDOWS)
    assert (first["orders"], first["accepted"], first["failed"], first["unanswered"], first["slow"]) == (3, 1, 1, 1, 1)
    assert (second["orders"], second["accepted"], second["unanswered"]) == (3, 1, 1)
    assert second["latency_p50_s"] in (0.1, 4.0) and second["latency_p99_s"] == 4.0


def test_slo_counts_an_order_in_overlapping_windows_once():
    """Catches the 'during faults' figures summing the windows (an order under two faults counted
    twice), and an empty load reading as a perfect one (share None, not 1.0)."""
    ops = [op(5, 0.1), op(16, 0.2), op(17, 0.3, "fail", 503)]
    figures = load_figures.slo(ops, WINDOWS)
    assert figures["during_faults"]["orders"] == 2 and figures["whole_load"]["orders"] == 3
    assert figures["during_faults"]["accepted_share"] == 0.5
    assert load_figures.slo([], WINDOWS)["whole_load"]["accepted_share"] is None


def test_history_of_skips_a_line_cut_short_by_a_kill(tmp_path):
    """Catches one half-written line (Locust killed mid-write) losing the whole day's answers."""
    row = {"key": "k1", "status": 201, "id": "o1", "order_status": "PAID", "invoked": 1.0, "completed": 1.5}
    path = tmp_path / "history.jsonl"
    unanswered = {**row, "key": "k2", "status": 0, "id": None}
    path.write_text(json.dumps(row) + "\n" + json.dumps(unanswered) + "\n" + '{"key": "k3", ')
    ops = history_of(path).ops
    assert [(o.key, o.outcome, o.order_id) for o in ops] == [("k1", "ok", "o1"), ("k2", "unknown", None)]


def _stack():
    return SimpleNamespace(run_id=RUN, topology=topology.load(topology.BUNDLED))


def test_a_second_start_while_one_runs_is_refused(state, monkeypatch):
    """Catches a second `chaos load start` starting another Locust beside the running one (two
    loads doubling the traffic, one of them stopped by no one)."""
    gameday_load.record_path(RUN).parent.mkdir(parents=True)
    gameday_load.record_path(RUN).write_text(json.dumps(
        {"run_id": RUN, "users": 5, "rate": 2.0, "started": 0.0, "runner": ownership.owner_token()}))

    def spawned(*args, **kwargs):
        raise AssertionError("a second runner was started")

    monkeypatch.setattr(detached, "spawn_detached", spawned)
    with pytest.raises(HarnessError, match="a load already runs on run .*`chaos load stop` ends it"):
        gameday_load.start(_stack())


def test_a_start_out_of_bounds_is_refused_before_anything_is_written(state):
    """Catches a load of 10 000 users (a typo) reaching Locust, or a record left behind by it."""
    with pytest.raises(HarnessError, match="load out of bounds"):
        gameday_load.start(_stack(), users=10_000)
    assert not (state / gameday_load.LOADS).exists()


def test_stop_ends_the_recorded_processes_and_says_when_none_runs(state):
    """Catches a stop that leaves the load's process running, and one that claims to have
    stopped a load when none ran (`chaos load stop` must say so, exit 2)."""
    assert gameday_load.stop(RUN) is None
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gameday_load.state.write_whole(gameday_load.record_path(RUN), json.dumps(
            {"run_id": RUN, "runner": ownership.owner_token(sleeper.pid), "locust": None}))
        assert gameday_load.running_runs() == [RUN]
        record = gameday_load.stop(RUN)
        assert sleeper.wait(timeout=5) is not None and record["ended"] is not None
        assert gameday_load.running_runs() == [] and gameday_load.stop(RUN) is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_reaper_forgets_the_loads_of_runs_that_are_gone(state):
    """Catches a load record (and its answers) outliving its run, or the reaper forgetting the
    load of a run that still runs (its report would lose the orders)."""
    other = "20260101T000001-0d0e0f"
    for run_id in (RUN, other):
        gameday_load.state.write_whole(gameday_load.record_path(run_id), json.dumps({"run_id": run_id}))
        gameday_load.load_dir(run_id).mkdir(parents=True)
    assert gameday_load.reap({other}) == [RUN]
    assert gameday_load.recorded_runs() == [other] and not gameday_load.load_dir(RUN).exists()


def test_the_ledger_fails_the_game_day_only_with_anomalies():
    """Catches a game day passed with lost orders, and one failed by a clean ledger or by a
    ledger that could not be judged (that is a note, not an anomaly)."""
    assert gameday_load.ledger_reason({"ledger": {"orders": 3, "anomalies": {}}}) is None
    assert gameday_load.ledger_reason({"ledger": None}) is None and gameday_load.ledger_reason({}) is None
    reason = gameday_load.ledger_reason({"ledger": {"anomalies": {"lost": "lost x1: key k1 was answered ok"}}})
    assert reason == "[ledger] lost: lost x1: key k1 was answered ok"


def test_the_workload_comes_from_the_systems_declaration(tmp_path):
    """Catches a topology without `load:` silently getting the shop's customers (the harness
    must not know the shop), and the shop's declaration not being found beside its topology."""
    assert hasattr(gameday_load.declared(topology.load(topology.BUNDLED)), "judge")
    bare = tmp_path / "chaos.yaml"
    bare.write_text("name: mine\nservices:\n  web: {image: python, port: 80, readiness: {tcp: {}}}\n")
    with pytest.raises(HarnessError, match="declares no game-day load"):
        gameday_load.declared(topology.load(bare))
