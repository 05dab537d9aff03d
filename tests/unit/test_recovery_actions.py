"""Recovery actions (a restart of a service, the manual's first response) in the reports: the
typed entry, report.json, the incident record in both languages, and the manual's coverage."""

from __future__ import annotations

import json

import pytest

from harness import runbook
from harness.faults.process import RecoveryAction
from harness.report import incident, json_report, schema
from harness.report.schema import ReportSchemaError
from tests.unit.test_report_data import HEAL, INJECT, RUN, scenario

RESTART = RecoveryAction("restart", "inventory_service", INJECT + 1.0, "restored")


def _restarted(*actions: RecoveryAction) -> dict:
    return {**scenario(), "recovery_actions": [a.record() for a in actions or (RESTART,)]}


def test_a_recovery_action_fits_the_entry_as_the_harness_records_it():
    """Catches the harness's RecoveryAction and the schema's drifting apart (a field renamed on
    one side: the plugin's entry would be refused at the end of the run), and the schema
    dropping or rewriting the action on its way to the file."""
    entry = schema.scenario_entry(_restarted())
    assert entry["recovery_actions"] == [{"what": "restart", "target": "inventory_service", "when": INJECT + 1.0,
                                          "outcome": "restored"}]


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.pop("recovery_actions"), "scenario.recovery_actions: Field required"),
    (lambda s: s["recovery_actions"][0].pop("outcome"), "scenario.recovery_actions[0].outcome: Field required"),
    (lambda s: s["recovery_actions"][0].update(when="now"),
     "scenario.recovery_actions[0].when: Input should be a valid number (got 'now')"),
])
def test_an_entry_without_its_recovery_actions_or_with_a_bad_one_is_one_line(change, message):
    """Catches a writer that forgets the recovery actions (a game day's entry without the key
    reads as 'nobody did anything'), and an action missing what the incident record tells."""
    given = _restarted()
    change(given)
    with pytest.raises(ReportSchemaError) as caught:
        schema.scenario_entry(given)
    assert str(caught.value) == f"report schema 3: {message}"


def test_report_json_carries_the_recovery_actions(tmp_path):
    """Catches the JSON writer leaving the recovery actions out of report.json (the summary
    readers and `chaos report` read) or out of the scenario's own file."""
    json_report.write(tmp_path / "r", RUN, [_restarted()])
    document = json.loads((tmp_path / "r" / "report.json").read_text())
    own = json.loads((tmp_path / "r" / "payment_outage.json").read_text())
    assert document["scenarios"][0]["recovery_actions"] == own["recovery_actions"] == [RESTART.record()]


@pytest.mark.parametrize(("lang", "line"), [
    ("en", "recovery action `restart` on inventory_service: service restored (it answers again)."),
    ("ja", "復旧操作 `restart`（inventory_service）: サービス復旧（再び応答）。"),
])
def test_the_incident_record_tells_the_restart_in_time_order_with_the_heals(lang, line):
    """Catches an incident record that leaves the restart out of its recovery section (復旧対応),
    tells it in one language only, or out of order with the heals (the restart came first)."""
    recovery = incident.fields(_restarted(), RUN, lang)["recovery"]
    restart = next(n for n, text in enumerate(recovery) if text.endswith(line))
    heal = next(n for n, text in enumerate(recovery) if "http.status" in text)
    assert restart < heal and recovery[restart].startswith(incident.PHRASES[lang]["when"].format(
        utc=json_report.stamp(INJECT + 1.0), jst=json_report.stamp(INJECT + 1.0, "jst")))


def test_a_restart_that_did_not_restore_is_told_as_it_came_out():
    """Catches an incident record that reports every restart as a success."""
    failed = RecoveryAction("restart", "inventory_service", HEAL + 1.0, "not answering: no answer within 90s")
    recovery = "\n".join(incident.fields(_restarted(failed), RUN, "en")["recovery"])
    assert "`restart` on inventory_service: not answering: no answer within 90s." in recovery
    assert "service restored" not in recovery


def test_a_scenario_performs_the_restart_the_manual_prescribes():
    """Catches the manual's restart_service being claimed by no scenario (the gap `chaos runbook`
    showed for the null-pointer root cause)."""
    claims = dict(runbook.declared()["inventory_null_pointer"])
    assert claims["service_restart"]["restart_safe"] == "restart_service"


def test_chaos_runbook_counts_restart_service_exercised_once_its_guard_held():
    """Catches the coverage table not reading the service_restart scenario's guard: after a run in
    which it held, restart_service is verified (exercised), and while it failed it is violated."""
    def report(held: bool) -> dict:
        return {"scenarios": [{"name": "service_restart", "root_cause": "inventory_null_pointer",
                               "guards": [{"tag": "wedged", "prescription": None, "held": True},
                                          {"tag": "restart_safe", "prescription": "restart_service", "held": held}]}]}

    def row(held: bool) -> dict:
        return next(r for r in runbook.coverage(report(held)) if r["root_cause"] == "inventory_null_pointer")

    assert "restart_service" in row(True)["verified"] and "restart_service" not in row(True)["unverified"]
    assert row(False)["violated"] == [{"prescription": "restart_service", "failed": ["service_restart [restart_safe]"]}]


def test_a_game_day_lists_the_restarts_of_its_journal(tmp_path, monkeypatch):
    """Catches `chaos down` leaving a `chaos restart` of the day out of the game day's entry
    (the journal holds it, the report would say nobody did anything), or keeping the journal's
    own keys in it (the entry would not fit the schema)."""
    from harness import gameday, state
    from tests.unit.test_report_schema import GAME_DAY, _game_day

    monkeypatch.setenv(state.STATE_ENV, str(tmp_path / "state"))
    state.append_journal(GAME_DAY, {"ts": RESTART.when, "action": gameday.RECOVER, **RESTART.record()})
    assert _game_day(tmp_path, monkeypatch)["recovery_actions"] == [RESTART.record()]
