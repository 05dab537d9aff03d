from harness import runbook
from harness.runbook import ROOT_CAUSES, coverage, declared

MANUAL_LINES = {
    "Payment gateway API returned 503 Service Unavailable.",
    "Database connection timed out.",
    "Unexpected null pointer exception in inventory service.",
    "Failed to process message from queue: malformed JSON.",
    "Disk space is critically low on server node-A.",
    "User authentication failed: invalid token.",
}


def test_the_six_root_causes_of_the_manual_carry_their_exact_lines():
    assert {rc.log_line for rc in ROOT_CAUSES.values() if rc.source == "seed 000"} == MANUAL_LINES


def test_step_ids_are_unique_within_a_root_cause():
    for rc in ROOT_CAUSES.values():
        ids = [s.id for s in rc.prescriptions + rc.first_response]
        assert len(ids) == len(set(ids)), rc.id


def test_markers_are_read_from_scenario_sources(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n@pytest.mark.chaos(root_cause='invalid_token', runbook=['fail_closed', 'bogus'])\n"
        "def test_auth_outage():\n    pass\n")
    assert declared(tmp_path) == {"invalid_token": [("auth_outage", ["fail_closed", "bogus"])]}
    row = next(r for r in coverage(tmp_path) if r["root_cause"] == "invalid_token")
    assert row["scenarios"] == ["auth_outage"] and row["verified"] == ["bogus", "fail_closed"]
    assert row["unknown"] == ["bogus"] and "reject_invalid_tokens" in row["unverified"]


def test_every_declared_prescription_of_the_real_scenarios_exists():
    for row in coverage(runbook.SCENARIOS_DIR):
        assert not row["unknown"], row
