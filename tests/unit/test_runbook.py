import json

from harness import runbook
from harness.runbook import ROOT_CAUSES, coverage, declared
from tests.conftest import BIN, run

MANUAL_LINES = {
    "Payment gateway API returned 503 Service Unavailable.",
    "Database connection timed out.",
    "Unexpected null pointer exception in inventory service.",
    "Failed to process message from queue: malformed JSON.",
    "Disk space is critically low on server node-A.",
    "User authentication failed: invalid token.",
}

MARKER = """import pytest

@pytest.mark.chaos(root_cause='invalid_token',
                   guards={'fail_closed': 'fail_closed', 'reject_invalid': 'reject_invalid_tokens',
                           'bogus_guard': 'bogus', 'latency': None})
def test_auth_outage():
    pass
"""


def _scenarios(tmp_path):
    (tmp_path / "test_x.py").write_text(MARKER)
    return tmp_path


def _report(
    *guards: tuple[str, str | None, bool], root_cause: str = "invalid_token", name: str = "auth_outage"
) -> dict:
    """A report.json with one scenario whose guards ran as given: (tag, prescription, held)."""
    return {"schema_version": 2, "run": {"run_id": "r1", "sut_mode": "resilient"},
            "scenarios": [{"name": name, "root_cause": root_cause, "outcome": "passed" if all(g[2] for g in guards)
                           else "failed", "guards": [{"tag": t, "prescription": p, "held": h} for t, p, h in guards]}]}


def _row(rows, cause="invalid_token"):
    return next(r for r in rows if r["root_cause"] == cause)


def test_the_six_root_causes_of_the_manual_carry_their_exact_lines():
    assert {rc.log_line for rc in ROOT_CAUSES.values() if rc.source == "operations manual"} == MANUAL_LINES


def test_step_ids_are_unique_within_a_root_cause():
    for rc in ROOT_CAUSES.values():
        ids = [s.id for s in rc.prescriptions + rc.first_response]
        assert len(ids) == len(set(ids)), rc.id


def test_guards_are_read_from_scenario_markers(tmp_path):
    assert declared(_scenarios(tmp_path)) == {"invalid_token": [("auth_outage", {
        "fail_closed": "fail_closed", "reject_invalid": "reject_invalid_tokens", "bogus_guard": "bogus",
        "latency": None})]}
    row = _row(coverage(None, _scenarios(tmp_path)))
    assert row["scenarios"] == ["auth_outage"]
    assert row["declared"] == ["bogus", "fail_closed", "reject_invalid_tokens"] and row["unknown"] == ["bogus"]


def test_a_marker_alone_verifies_nothing(tmp_path):
    row = _row(coverage(None, _scenarios(tmp_path)))
    assert row["verified"] == [] and row["violated"] == []
    assert row["unverified"] == [s.id for s in ROOT_CAUSES["invalid_token"].prescriptions
                                 + ROOT_CAUSES["invalid_token"].first_response]
    old = {"scenarios": [{"name": "auth_outage", "root_cause": "invalid_token", "outcome": "passed",
                          "runbook": ["fail_closed"]}]}  # a report from before guards were recorded
    assert _row(coverage(old, _scenarios(tmp_path)))["verified"] == []


def test_a_guard_that_held_verifies_its_prescription(tmp_path):
    row = _row(coverage(_report(("fail_closed", "fail_closed", True), ("latency", None, True)), _scenarios(tmp_path)))
    assert row["verified"] == ["fail_closed"] and "fail_closed" not in row["unverified"]
    assert "reject_invalid_tokens" in row["unverified"]  # declared, but its guard did not run


def test_a_guard_that_failed_does_not_verify_its_prescription(tmp_path):
    report = _report(("reject_invalid", "reject_invalid_tokens", True), ("fail_closed", "fail_closed", False))
    row = _row(coverage(report, _scenarios(tmp_path)))
    assert row["verified"] == ["reject_invalid_tokens"]
    assert row["violated"] == [{"prescription": "fail_closed", "failed": ["auth_outage [fail_closed]"]}]
    assert "fail_closed" in row["unverified"]


def test_one_failure_of_a_prescription_outweighs_its_guards_that_held(tmp_path):
    report = _report(("fail_closed", "fail_closed", True), ("fail_closed", "fail_closed", False))
    assert _row(coverage(report, _scenarios(tmp_path)))["verified"] == []


def test_guards_verify_only_their_own_root_cause(tmp_path):
    report = _report(("fail_closed", "fail_closed", True), root_cause="payment_gateway_outage")
    assert _row(coverage(report, _scenarios(tmp_path)))["verified"] == []


def test_every_declared_prescription_of_the_real_scenarios_exists():
    for row in coverage(None, runbook.SCENARIOS_DIR):
        assert not row["unknown"], row
        assert row["declared"], row  # every root cause has a guard that claims one of its prescriptions


def _chaos_runbook(*args):
    return run([str(BIN / "chaos"), "runbook", *args])


def test_runbook_without_a_run_says_nothing_is_verified(tmp_path):
    result = _chaos_runbook("--reports", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"no run found in {tmp_path}/: nothing is verified (run `make chaos` first)"
    assert "verified: -" in result.stdout and "verified: fail" not in result.stdout
    document = json.loads(_chaos_runbook("--json", "--reports", str(tmp_path)).stdout)
    assert document["judged"] is None and all(not row["verified"] for row in document["root_causes"])


def test_runbook_judges_the_latest_run_or_a_named_one(tmp_path):
    run_dir = tmp_path / "20270115T080000-abcdef"
    run_dir.mkdir()
    report = _report(("fail_closed", "fail_closed", True), ("reject_invalid", "reject_invalid_tokens", False))
    (run_dir / "report.json").write_text(json.dumps(report))
    (tmp_path / "latest").symlink_to(run_dir.name)
    for args in ([], ["--run", run_dir.name]):
        result = _chaos_runbook("--reports", str(tmp_path), *args)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("judged run r1 (resilient shop, 1 scenario(s)): ") and lines[0].endswith(
            "report.json"
        )
        block = "\n".join(lines[lines.index(next(line for line in lines if " invalid_token " in line)):][:4])
        assert "verified: fail_closed\n" in block + "\n"
        assert "FAILED:   reject_invalid_tokens (auth_outage [reject_invalid])" in block
    document = json.loads(_chaos_runbook("--json", "--reports", str(tmp_path)).stdout)
    assert document["judged"]["run_id"] == "r1" and _row(document["root_causes"])["verified"] == ["fail_closed"]


def test_runbook_of_a_missing_named_run_is_one_line_and_exit_2(tmp_path):
    result = _chaos_runbook("--run", "20200101T000000-0a0b0c", "--reports", str(tmp_path))
    assert result.returncode == 2 and result.stdout == "" and "no such run" in result.stderr


def test_runbook_exits_1_on_a_root_cause_without_a_scenario(tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.setattr(runbook, "declared", lambda scenarios_dir: {})
    assert cli.main(["runbook", "--reports", str(tmp_path)]) == 1
    assert "GAP payment_gateway_outage" in capsys.readouterr().out


def test_the_source_documents_are_named_by_their_titles():
    """Catches text that names a source document by its file number ("seed 003") where a reader
    of the harness, its reports or the shop knows only titles (the operations manual, the
    incident-record format)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    numbered = re.compile(r"\bseeds?[- ]?\(?0\d\d\b|seed incidents", re.I)
    files = [path for top in ("harness", "services", "scenarios") for path in sorted((root / top).rglob("*"))
             if path.suffix in (".py", ".md", ".yaml", ".html")] + [root / "reports" / "README.md"]
    found = [f"{path.relative_to(root)}:{n}" for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if numbered.search(line)]
    found += [
        f"README.md:{n}"
        for n, line in enumerate((root / "README.md").read_text(encoding="utf-8").splitlines(), 1)
        if numbered.search(line)
    ]
    assert found == []
