"""The files a run leaves: report.html, timeline.csv, the incident records, the JSON report."""

from __future__ import annotations

import csv
import json
import re

import pytest

from harness.report import csv_timeline, html, incident, json_report
from harness.report.json_report import RAW
from tests.unit.test_report_data import RUN, T0, scenario

# Anything a browser would load or follow to another host: src/href/action to a URL, CSS url().
REMOTE = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""", re.I)
FAILED_REASON = "AssertionError: [backoff] retry intervals of the first order do not grow: [0.2, 0.1]"


def _scenarios() -> list[dict]:
    return [scenario(), scenario("rabbitmq_config_missing[api_gateway]", "failed", FAILED_REASON)]


def test_html_is_self_contained_with_an_svg_per_scenario():
    page = html.render(RUN, _scenarios())
    assert not REMOTE.search(page), REMOTE.search(page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    sections = page.split("<section")[1:]
    assert len(sections) == 2 and all("<svg" in part for part in sections)
    assert page.count("<svg") == 6  # health, latency and error rate for each
    assert 'class="fault"' in page and "http.status @ payment_gateway" in page
    assert "[backoff] retry intervals" in page and "n/o" not in page.split("<h2>summary</h2>")[1].split("</table>")[0]


def test_html_marks_a_remote_reference_even_when_text_mentions_one():
    s = scenario(reason="AssertionError: [x] GET http://127.0.0.1:8080/orders timed out <img src=x>", outcome="failed")
    page = html.render(RUN, [s])
    assert "http://127.0.0.1:8080/orders" in page and "<img" not in page  # text, escaped
    assert not REMOTE.search(page)


def test_html_without_samples_or_history_still_draws_the_health_plot():
    bare = {"name": "rabbitmq_config_missing", "outcome": "failed", "reason": "setup failed", "runbook": [],
            "guards": []}
    page = html.render(RUN, [bare])
    assert page.count("<svg") == 1 and "no probe samples" in page


def test_a_silent_stretch_breaks_the_score_line():
    svg = html.plot("t", "", 100, 10, [html.Series("score", [(0, 100), (1, None), (2, None), (3, 40)], "#000")], [])
    assert svg.count("<polyline") == 2


def test_plot_shades_and_labels_windows_and_draws_marks():
    svg = html.plot("t", "", 100, 10, [html.Series("score", [(0, 100), (5, 40)], "#000")],
                    [{"fault": "disk.fill", "target": "node_a", "start": 2.0, "end": None}],
                    [(3.0, "detected", "#f00")])
    assert svg.count('class="fault"') == 1 and "disk.fill @ node_a" in svg and "detected" in svg
    assert "<polyline" in svg and svg.startswith("<svg") and svg.endswith("</svg>")


@pytest.mark.parametrize("lang", incident.LANGUAGES)
def test_incident_records_have_the_six_fields_of_seed_004(lang):
    text = incident.render(scenario(), RUN, lang)
    headings = [incident.HEADINGS[lang][field] for field in incident.FIELDS]
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == headings
    fields = incident.fields(scenario(), RUN, lang)
    assert all(fields[field] for field in incident.FIELDS)


def test_incident_fields_come_from_the_run():
    fields = {k: "\n".join(v) for k, v in incident.fields(scenario(), RUN, "en").items()}
    assert "worst score during the fault 60 (orange)" in fields["symptoms"]
    assert "when the scenario started: 100 (green)" in fields["symptoms"]
    assert "no answer ×1, 202 ×21, 503 ×1" in fields["symptoms"]
    assert "alert **firing** from api_gateway" in fields["symptoms"]
    assert "was logged 1 time(s)" in fields["symptoms"]
    assert "healed `http.status` on payment_gateway" in fields["recovery"]
    assert "check_vendor_status" in fields["recovery"]
    assert "2027-01-15" in fields["duration"] and " JST" in fields["duration"] and " UTC" in fields["duration"]
    assert "Time to detect" in fields["duration"] and "0.20 s" in fields["duration"] and "1.70 s" in fields["duration"]
    assert "External payment gateway outage" in fields["cause"] and '{"status": 503}' in fields["cause"]
    assert "23 orders: 21 accepted, 1 failed, 1 without an answer" in fields["impact"]
    assert "api_gateway (60)" in fields["impact"]
    assert fields["prevention"].count("Verified by this run") == 5


def test_incident_in_japanese_uses_the_manual_in_japanese():
    fields = {k: "\n".join(v) for k, v in incident.fields(scenario(), RUN, "ja").items()}
    assert "外部依存サービス（決済ゲートウェイ）" in fields["cause"]
    assert "ベンダーのステータスページ" in fields["recovery"] and "検証済み" in fields["prevention"]


def test_every_step_of_the_manual_has_a_japanese_text():
    """Catches a step added to the manual in English only: the Japanese record would show it blank."""
    from harness.runbook import ROOT_CAUSES

    assert all(step.text_ja.strip() for rc in ROOT_CAUSES.values() for step in rc.steps)


def test_a_failed_guard_violates_its_prescription_and_held_ones_verify_theirs():
    failed = scenario("payment_outage", "failed", FAILED_REASON)  # stopped at [backoff]
    verdicts = dict(incident.prescription_verdicts(failed["runbook"], failed["guards"]))
    assert verdicts == {"fallback": "verified", "alert_on_recovery": "verified", "retry_with_backoff": "violated",
                        "circuit_breaker": "unproven", "exactly_once_settlement": "unproven"}
    prevention = "\n".join(incident.fields(failed, RUN, "en")["prevention"])
    assert "Violated (failed at [backoff]): `retry_with_backoff`" in prevention
    assert "Verified by this run: `fallback`" in prevention
    assert "Not proven by this run (it failed at [backoff]): `circuit_breaker`" in prevention


def test_a_marker_alone_verifies_nothing():
    claimed = {**scenario(), "guards": []}  # the marker names five prescriptions; no guard ran
    assert {v for _, v in incident.prescription_verdicts(claimed["runbook"], claimed["guards"])} == {"unproven"}
    prevention = "\n".join(incident.fields(claimed, RUN, "en")["prevention"])
    assert "Verified" not in prevention and prevention.count("no guard of it ran") == 5
    assert "verified" not in html.section(claimed).split('class="cause"')[1].split("</p>")[0]


def test_a_guard_that_held_once_and_failed_later_does_not_verify():
    guards = [{"tag": "breaker_opens", "prescription": "circuit_breaker", "held": True},
              {"tag": "breaker_opens", "prescription": "circuit_breaker", "held": False}]
    assert incident.prescription_verdicts(["circuit_breaker"], guards) == [("circuit_breaker", "violated")]
    held = [{"tag": "fallback_202", "prescription": "fallback", "held": True}]
    assert incident.prescription_verdicts(["fallback"], held) == [("fallback", "verified")]


def test_writers_leave_every_file(tmp_path):
    run_dir = tmp_path / RUN["run_id"]
    for writer in (csv_timeline.write, html.write, incident.write, json_report.write):
        writer(run_dir, RUN, _scenarios())
    names = {p.name for p in run_dir.iterdir()}
    assert {"report.html", "timeline.csv", "report.json", "payment_outage.json",
            "incident-payment_outage.ja.md", "incident-payment_outage.en.md",
            "incident-rabbitmq_config_missing-api_gateway.en.md"} <= names
    assert (tmp_path / "latest").resolve() == run_dir.resolve()


def test_csv_has_one_row_per_sample_with_active_faults(tmp_path):
    path = csv_timeline.write(tmp_path, RUN, [scenario()])
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 120 and tuple(rows[0]) == csv_timeline.COLUMNS
    by_t = {row["t_rel"]: row for row in rows}
    assert by_t["3.000"]["fault_active"] == "http.status" and by_t["1.000"]["fault_active"] == ""
    assert by_t["3.000"]["level"] == "orange" and by_t["3.000"]["ts"].endswith("Z")


def test_json_report_keeps_the_raw_timeline_out_of_report_json(tmp_path):
    json_report.write(tmp_path / "r", RUN, [scenario()])
    document = json.loads((tmp_path / "r" / "report.json").read_text())
    assert document["schema_version"] == json_report.SCHEMA_VERSION
    summary = document["scenarios"][0]
    assert RAW not in summary and summary["ttd_s"] == pytest.approx(0.2) and summary["ttr_s"] == pytest.approx(1.7)
    own = json.loads((tmp_path / "r" / "payment_outage.json").read_text())
    assert len(own[RAW]["samples"]) == 120 and own["run_id"] == RUN["run_id"]


def test_summary_rows_and_times_for_people():
    rows = json_report.summary_rows([scenario(), {"name": "x", "outcome": "failed", "reason": "a\nb" + "c" * 200}],
                                    reason_chars=20)
    assert rows[0] == {"scenario": "payment_outage", "verdict": "passed", "ttd": "0.20 s", "ttr": "1.70 s",
                       "reason": ""}
    assert rows[1]["reason"] == "a" and rows[1]["ttd"] == "n/o"
    assert json_report.stamp(T0) == "2027-01-15 08:00:00.000 UTC"
    assert json_report.stamp(T0, "jst") == "2027-01-15 17:00:00.000 JST"


def test_the_csv_stamps_of_a_day_are_those_of_stamp():
    """Catches the CSV's fast stamps drifting from stamp(ts, "iso"): a millisecond off at a
    second's edge, or a rounding carried the wrong way."""
    import random

    rng = random.Random(7)
    times = [1_800_000_000 + rng.uniform(0, 86400) for _ in range(20000)]
    times += [1_800_000_000 + k + edge for k in range(50) for edge in (0.0, 0.9994999, 0.9995, 0.9999995, 0.9999996)]
    assert json_report.iso_stamps(times) == [json_report.stamp(t, "iso") for t in times]


def test_the_raw_timeline_has_one_compact_item_per_line_whatever_the_items_hold(tmp_path):
    """Catches the one-call encoding of a list of dicts splitting it where "}, {" is inside an
    item (a string holding it, a nested list of dicts) instead of between items: an item cut in
    two lines, or two on one."""
    plain = [{"ts": T0 + n / 2, "score": 95, "services": {"api_gateway": 95}, "error": None} for n in range(3)]
    tricky = [{"ts": T0, "error": "refused}, {retry"}, {"ts": T0 + 1, "nested": [{}, {"a": 1}]}, {"ts": T0 + 2}]
    raw = {"samples": plain, "ops": tricky, "journal": [1, "x", {"y": [2]}]}
    path = tmp_path / "s.json"
    json_report._dump(path, {"schema_version": 2, RAW: raw})
    lines = path.read_text(encoding="utf-8").splitlines()
    for items in raw.values():
        encoded = [json_report.COMPACT.encode(item) for item in items]
        assert [line.strip().rstrip(",") for line in lines if line.strip().rstrip(",") in encoded] == encoded
    assert json.loads(path.read_text(encoding="utf-8"))[RAW] == raw


def test_the_csv_stamps_are_those_of_stamp_across_midnights():
    """Catches the CSV's per-day date going wrong at a day's edge: a time just before midnight
    rounded into the next day keeping the day before's date, or a day's date reused for the next."""
    midnight = 1_798_761_600  # 2027-01-01 00:00:00 UTC
    times = [midnight + day * 86400 + edge for day in range(-2, 40, 3)
             for edge in (-0.9995, -0.0005001, -0.0000004, 0.0, 0.0004999, 43199.9996)]
    assert json_report.iso_stamps(times) == [json_report.stamp(t, "iso") for t in times]


@pytest.mark.parametrize("lang,said", [("en", "performed: read the vendor's status page; seen: major outage"),
                                       ("ja", "実施: read the vendor's status page。結果: major outage")])
def test_incident_says_which_first_responses_were_performed_and_what_they_saw(lang, said):
    """Catches a record that lists the manual's first responses alike whether the scenario
    performed them or not (the reader could not tell a check done from one prescribed)."""
    s = scenario()
    s["figures"] = {"first_responses": [{"step": "check_vendor_status", "did": "read the vendor's status page",
                                         "saw": "major outage"}]}
    recovery = "\n".join(incident.fields(s, RUN, lang)["recovery"])
    (performed,) = [line for line in recovery.splitlines() if "check_vendor_status" in line]
    assert said in performed
    (triage,) = [line for line in recovery.splitlines() if "triage_alerts" in line]
    assert "performed" not in triage and "実施" not in triage


def test_time_under_fault_merges_overlapping_windows_and_ends_an_open_one_with_its_scenario():
    """The figure next to a run's length: the fault windows' union. Broken when overlapping
    windows are counted twice (ratio too small) or an open window is dropped (too large)."""
    from harness.report.json_report import time_under_fault, under_fault_line

    run = {"started": 1000.0, "finished": 1100.0}
    scenarios = [
        {"faults": [{"start": 1010.0, "end": 1020.0}, {"start": 1015.0, "end": 1025.0}]},  # 15 s together
        {"window": {"finished": 1060.0}, "faults": [{"start": 1050.0, "end": None}]},  # open: to 1060
        {"faults": []},
    ]
    assert time_under_fault(run, scenarios) == {"run_s": 100.0, "faults_s": 25.0, "ratio": 4.0}
    assert under_fault_line(run, scenarios) == "100 s, faults active 25 s of it (ratio 4.00)"
    assert time_under_fault(run, [{"faults": []}])["ratio"] is None
    assert "not known" in under_fault_line({"started": 1000.0}, scenarios)


def test_a_game_days_load_figures_are_drawn_as_tables_not_left_raw():
    """A game day's section shows the ledger of its load, the service level over the whole load
    and while faults were active, and each fault window's impact: what a scenario's report has.
    Broken when the load's figures are left in the raw own-figures table (or dropped)."""
    from harness import load_figures

    ops = [{"invoked": T0 + i, "outcome": "ok" if i % 4 else "fail", "latency_s": 0.1 * (i + 1)} for i in range(12)]
    faults = [{"fault": "http.status", "target": "payment_gateway", "start": T0 + 4, "end": T0 + 8}]
    entry = scenario("game_day")
    entry["figures"] = {"loads": [{"users": 5, "rate": 2.0, "duration_s": 60, "stats": {"requests": 12,
                                                                                          "failures": 3}}],
                        "ledger": {"orders": 12, "anomalies": {"lost": 0, "double_charge": 1}},
                        "slo": load_figures.slo(ops, faults), "impact_per_fault": load_figures.per_fault(ops, faults)}
    page = html.section(entry)
    assert "<h3>load</h3>" in page and "double_charge × 1" in page and "lost ×" not in page
    assert "while faults were active" in page and "http.status" in page and "75.0 %" in page
    assert "impact_per_fault" not in page  # drawn, not repeated raw
    entry["figures"] = {"restart": "restored"}  # a scenario: no load part
    assert "<h3>load</h3>" not in html.section(entry)
