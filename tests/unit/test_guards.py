"""Guards: expect() asserts with its tag, records what ran, and refuses a tag its scenario's
marker does not declare; the plugin puts what ran into the scenario's report record."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from harness import guards
from harness.guards import COMMON, expect
from harness.runbook import SCENARIOS_DIR
from tests.conftest import BIN, run


@pytest.fixture
def log():
    active = guards.activate("payment_outage", {"fallback_202": "fallback", "latency_budget": None})
    yield active
    guards.deactivate(active)


def test_expect_raises_with_its_tag_when_the_guard_does_not_hold(log):
    with pytest.raises(AssertionError) as failure:
        expect("fallback_202", False, "orders were not accepted as PAYMENT_PENDING")
    assert str(failure.value) == "[fallback_202] orders were not accepted as PAYMENT_PENDING"


def test_expect_records_what_held_and_what_failed_in_order(log):
    expect("latency_budget", True, "unused")
    expect("steady_state_before", ["a truthy value"], "unused")  # a shared guard: COMMON
    with pytest.raises(AssertionError):
        expect("fallback_202", [], "nothing was accepted")
    assert log.records() == [{"tag": "latency_budget", "prescription": None, "held": True},
                             {"tag": "steady_state_before", "prescription": None, "held": True},
                             {"tag": "fallback_202", "prescription": "fallback", "held": False}]


def test_expect_rejects_a_tag_the_marker_does_not_declare(log):
    for held in (True, False):
        with pytest.raises(AssertionError, match=r"guard 'backoff' is not declared by scenario payment_outage"):
            expect("backoff", held, "retry intervals do not grow")
    assert log.records() == []


def test_without_an_active_log_expect_only_asserts():
    guards.deactivate()
    expect("anything", True, "unused")
    with pytest.raises(AssertionError, match=r"^\[anything\] no$"):
        expect("anything", False, "no")


def test_a_fresh_log_starts_empty_and_only_its_own_deactivation_ends_it(log):
    expect("latency_budget", True, "unused")
    newer = guards.activate("db_outage", {"db_503": "pool_timeouts"})
    assert newer.ran == [] and guards.active() is newer
    guards.deactivate(log)  # an older scenario's late end leaves the newer log alone
    assert guards.active() is newer
    guards.deactivate(newer)
    assert guards.active() is None


def test_marker_tables_add_the_shared_guards_and_list_each_claimed_prescription_once():
    table = guards.table({"ledger": "zero_lost", "a": "fallback", "b": None, "c": "fallback"})
    assert table == {**COMMON, "ledger": "zero_lost", "a": "fallback", "b": None, "c": "fallback"}
    assert guards.prescriptions({"a": "fallback", "b": None, "c": "fallback", "ledger": "zero_lost"}) == \
        ["zero_lost", "fallback"]


def _chaos_markers(path: Path) -> dict[str, dict[str, str | None]]:
    """test function -> its chaos marker's guards=, read from the source."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("mark.chaos"):
                    kwargs = {k.arg: ast.literal_eval(k.value) for k in decorator.keywords}
                    assert "runbook" not in kwargs, f"{path.name}: runbook= is gone, declare guards="
                    found[node.name] = kwargs.get("guards") or {}
    return found


def _tags_used(path: Path) -> set[str]:
    """The literal tags a scenario module passes to expect()."""
    return {call.args[0].value for call in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(call, ast.Call) and ast.unparse(call.func) == "expect" and call.args
            and isinstance(call.args[0], ast.Constant)}


@pytest.mark.parametrize("path", sorted(SCENARIOS_DIR.glob("test_*.py")), ids=lambda p: p.stem)
def test_every_guard_a_scenario_uses_is_declared_by_its_marker_and_none_is_left_over(path):
    markers = _chaos_markers(path)
    assert markers, f"{path.name} has no chaos marker"
    used = _tags_used(path)
    for name, declared in markers.items():
        assert used - set(declared) - set(COMMON) == set(), f"{name}: guards used but not declared"
        assert set(declared) - set(COMMON) - used == set(), f"{name}: guards declared but never used"


PLUGIN_SCENARIOS = '''
import pytest

from harness.guards import expect


@pytest.mark.chaos(root_cause="payment_gateway_outage",
                   guards={"fallback_202": "fallback", "backoff": "retry_with_backoff",
                           "breaker_opens": "circuit_breaker", "latency_budget": None},
                   protects={"fallback_202": "fallback", "backoff": ("retry", "backoff"), "breaker_opens": "breaker"},
                   preconditions=("latency_budget",))
def test_stops_at_backoff():
    expect("steady_state_before", True, "unused")
    expect("fallback_202", True, "unused")
    expect("latency_budget", True, "unused")
    expect("backoff", False, "retry intervals of the first order do not grow")
    expect("breaker_opens", True, "never reached")


@pytest.mark.chaos(root_cause="payment_gateway_outage", guards={"fallback_202": "fallback"},
                   protects={"fallback_202": "fallback"})
def test_uses_an_undeclared_guard():
    expect("backoff", True, "unused")


@pytest.mark.chaos(root_cause="payment_gateway_outage", runbook=["fallback"])
def test_keeps_the_old_marker():
    pass


@pytest.mark.chaos(root_cause="payment_gateway_outage", guards={"fallback_202": "no_such_step"})
def test_claims_a_step_the_manual_lacks():
    expect("fallback_202", True, "unused")


@pytest.mark.chaos(root_cause="payment_gateway_outage", guards={"fallback_202": "fallback"})
def test_guards_nothing():
    expect("fallback_202", True, "unused")


@pytest.mark.chaos(root_cause="payment_gateway_outage", guards={"fallback_202": "fallback"},
                   protects={"fallback_202": "brakes"})
def test_names_an_unknown_protection():
    expect("fallback_202", True, "unused")
'''


def test_the_plugin_records_each_scenarios_guards_in_its_report(tmp_path):
    (tmp_path / "test_wiring.py").write_text(PLUGIN_SCENARIOS)
    reports = tmp_path / "reports"
    result = run([str(BIN / "pytest"), str(tmp_path / "test_wiring.py"), "-p", "no:cacheprovider",
                  f"--rootdir={tmp_path}", f"--chaos-reports={reports}"], timeout=120)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    scenarios = {s["name"]: s for s in json.loads((reports / "latest" / "report.json").read_text())["scenarios"]}

    stopped = scenarios["stops_at_backoff"]
    assert stopped["guards"] == [{"tag": "steady_state_before", "prescription": None, "held": True},
                                 {"tag": "fallback_202", "prescription": "fallback", "held": True},
                                 {"tag": "latency_budget", "prescription": None, "held": True},
                                 {"tag": "backoff", "prescription": "retry_with_backoff", "held": False}]
    assert stopped["runbook"] == ["fallback", "retry_with_backoff", "circuit_breaker"]
    assert stopped["reason"].startswith("AssertionError: [backoff] retry intervals of the first order do not grow")

    undeclared = scenarios["uses_an_undeclared_guard"]
    assert undeclared["outcome"] == "failed" and undeclared["guards"] == []
    assert "'backoff'" in undeclared["reason"] and "uses_an_undeclared_guard" in undeclared["reason"]

    assert "runbook= is gone" in scenarios["keeps_the_old_marker"]["reason"]
    assert "no_such_step" in scenarios["claims_a_step_the_manual_lacks"]["reason"]
    assert "guard 'fallback_202' names no protection" in scenarios["guards_nothing"]["reason"]
    assert "unknown protection 'brakes'" in scenarios["names_an_unknown_protection"]["reason"]
    assert stopped["protects"] == {"fallback_202": ["fallback"], "backoff": ["retry", "backoff"],
                                   "breaker_opens": ["breaker"]}
    assert stopped["preconditions"] == ["latency_budget"]

    incident = (reports / "latest" / "incident-stops_at_backoff.en.md").read_text()
    assert "Verified by this run: `fallback`" in incident
    assert "Violated (failed at [backoff]): `retry_with_backoff`" in incident
    assert "Not proven by this run (it failed at [backoff]): `circuit_breaker`" in incident
