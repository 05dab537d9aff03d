"""The proof that payment_outage can fail: against the fragile shop it must fail, and for the
reason it guards (no 202 PAYMENT_PENDING fallback), while the resilient shop passes it."""

import json

import pytest

from tests.conftest import BIN, run

pytestmark = pytest.mark.integration


def _run_scenario(tmp_path, mode):
    result = run([str(BIN / "pytest"), "scenarios/", "-k", "payment_outage", f"--sut-mode={mode}",
                  f"--chaos-reports={tmp_path}", "-p", "no:cacheprovider", "-q"])
    report = json.loads((tmp_path / "latest" / "report.json").read_text())
    return result, {s["name"]: s for s in report["scenarios"]}


def test_payment_outage_fails_on_the_fragile_shop_for_the_guarded_reason(tmp_path):
    result, scenarios = _run_scenario(tmp_path, "fragile")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    outcome = scenarios["payment_outage"]
    assert outcome["outcome"] == "failed"
    assert "[fallback_202]" in outcome["reason"] and "502" in outcome["reason"], outcome["reason"]


def test_payment_outage_passes_on_the_resilient_shop(tmp_path):
    result, scenarios = _run_scenario(tmp_path, "resilient")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    figures = scenarios["payment_outage"]["figures"]
    assert figures["orders_during_outage"] == 12 and figures["breaker_windows"]
