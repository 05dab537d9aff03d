"""One report schema for every writer: the plugin's and the game day's entries fit it, a field
that does not is one line naming it, and the JSON writer writes nothing that does not fit."""

from __future__ import annotations

import json

import pytest

from harness import gameday, state
from harness.report import json_report, schema, write_all
from harness.report.json_report import RAW, EncodedItems
from harness.report.schema import ReportSchemaError
from tests.unit.test_report_data import INJECT, RUN, T0, journal, samples, scenario, verdict_only

GAME_DAY = "20270115T090000-9a3e00"
TRIP = {"condition": "health<50 for 30s", "ts": T0 + 40, "held_since": T0 + 10, "observed": 0, "level": "red",
        "healed": ["f1"]}


def _game_day(tmp_path, monkeypatch, trip: bool = False) -> dict:
    """The game day's entry as `chaos down` builds it (harness.gameday.scenario), from a samples
    file and a journal in a state directory of the test's own, the stack already gone."""
    monkeypatch.setenv(state.STATE_ENV, str(tmp_path / "state"))
    path = gameday.samples_path(GAME_DAY)
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(s) + "\n" for s in samples()), encoding="utf-8")
    for entry in journal() + ([{"ts": T0 + 40.5, "action": "abort", **TRIP}] if trip else []):
        state.append_journal(GAME_DAY, entry)
    return gameday.scenario(GAME_DAY, None)


def test_a_plugin_entry_and_a_game_day_entry_both_fit_and_have_the_same_keys(tmp_path, monkeypatch):
    """Catches the two writers drifting apart: a key the plugin fills and the game day does not
    (scenario, mutant, protects ... as it was before the schema), or the other way round."""
    plugin = schema.scenario_entry(scenario())
    day = _game_day(tmp_path, monkeypatch)
    assert list(day) == list(plugin)
    assert day["name"] == "game_day" and day["faults"][0]["start"] == INJECT and day["unobserved"]
    document, _ = schema.report(RUN, [plugin, day])
    assert [s["name"] for s in document["scenarios"]] == ["payment_outage", "game_day"]


def test_an_entry_that_ended_before_its_probe_fits_without_findings():
    """Catches the schema demanding the findings of a timeline of a scenario that failed in setup
    (its report would not be written), or writing them as nulls it never observed."""
    entry = schema.scenario_entry(verdict_only("rabbitmq_outage", "failed"))
    assert "window" not in entry and "ttd_s" not in entry and entry["outcome"] == "failed"


def test_the_schema_writes_back_what_the_writer_gave():
    """Catches the schema rewriting an entry on its way to the file: a key dropped or added by a
    default, a count turned into a float, keys reordered, the game day's samples copied (they
    would lose the lines json_report copies instead of encoding them again)."""
    given = scenario()
    given["guardrail"] = dict(TRIP)
    given[RAW]["samples"] = EncodedItems.of_lines(
        "".join(json_report.COMPACT.encode(s) + "\n" for s in given[RAW]["samples"]), given[RAW]["samples"])
    entry = schema.scenario_entry(given)
    assert json.dumps(entry) == json.dumps(given) and list(entry) == list(given)
    assert entry[RAW]["samples"] is given[RAW]["samples"] and entry["guardrail"]["observed"] == 0
    assert type(entry["guardrail"]["observed"]) is int


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.pop("outcome"), "report schema 3: scenario.outcome: Field required"),
    (lambda s: s.update(outcome="green"),
     "report schema 3: scenario.outcome: Input should be 'passed', 'failed' or 'skipped' (got 'green')"),
    (lambda s: s["health"].update(samples="3"),
     "report schema 3: scenario.health.samples: Input should be a valid integer (got '3')"),
    (lambda s: s["guards"][1].pop("held"), "report schema 3: scenario.guards[1].held: Field required"),
    (lambda s: s.update(ttd=0.2), "report schema 3: scenario.ttd: Extra inputs are not permitted (got 0.2)"),
    (lambda s: s.pop("health"),
     "report schema 3: scenario: health: missing (an entry with window has every finding of its timeline: "
     "window, probe, unobserved, faults, detected_at, recovered_at, ttd_s, ttr_s, health, impact, alerts, logs)"),
    (lambda s: s[RAW].pop("ops"), "report schema 3: scenario.timeline: should hold samples, ops, journal "
                                  "(got ['journal', 'samples'])"),
])
def test_a_field_that_does_not_fit_is_one_line_naming_it(change, message):
    """Catches a bad field passing (a missing verdict, a count as text, a renamed key, half the
    findings of its timeline) or being reported as pydantic's screenful instead of the field's path."""
    bad = scenario()
    change(bad)
    with pytest.raises(ReportSchemaError) as caught:
        schema.scenario_entry(bad)
    assert str(caught.value) == message


def test_several_bad_fields_name_the_first_and_count_the_rest():
    bad = {**verdict_only(), "duration_s": "long", "figures": None}
    with pytest.raises(ReportSchemaError, match=r"^report schema 3: scenario\.duration_s: .*; and 1 more$"):
        schema.scenario_entry(bad)


def test_a_game_day_trip_is_kept_without_the_journal_action(tmp_path, monkeypatch):
    """Catches the game day copying the watcher's journal entry as its trip: the "action" key
    is the journal's, and the schema refuses it (the report would not be written)."""
    day = _game_day(tmp_path, monkeypatch, trip=True)
    assert day["guardrail"] == TRIP and day["outcome"] == "failed" and day["reason"].startswith("[guardrail]")


def test_the_json_writer_writes_nothing_that_does_not_fit(tmp_path):
    """Catches json_report (or write_all, the CSV, HTML and incident writers before it) writing a
    run whose document does not fit: a partial run directory, or latest moved to it."""
    bad = scenario()
    bad["impact"]["during_fault"].pop("orders")
    for write in (json_report.write, write_all):
        with pytest.raises(ReportSchemaError, match=r"scenarios\[1\]\.impact\.during_fault\.orders: Field required"):
            write(tmp_path / RUN["run_id"], RUN, [scenario(), bad])
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(ReportSchemaError, match=r"^report schema 3: run\.stack: Input should be"):
        json_report.write(tmp_path / RUN["run_id"], {**RUN, "stack": "docker"}, [scenario()])
    assert list(tmp_path.iterdir()) == []


def test_the_written_document_carries_the_schema_version(tmp_path):
    """Catches report.json written without its version, or with another than the schema's: a
    reader could not tell a schema 2 report (game-day entries without scenario or mutant)."""
    json_report.write(tmp_path / RUN["run_id"], RUN, [scenario()])
    document = json.loads((tmp_path / RUN["run_id"] / "report.json").read_text())
    assert document["schema_version"] == schema.SCHEMA_VERSION == 3
    assert schema.Report.model_validate(document).run.run_id == RUN["run_id"]
