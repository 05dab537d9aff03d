"""The matrix's judgement on synthetic report records: each verdict has a record that earns it,
and the whole holds only when every protection and every guard was killed."""

from harness import matrix

PROTECTS = {"fallback_202": ["fallback"], "backoff": ["retry", "backoff"]}
DECLARED = {"payment_outage": PROTECTS}


def record(mutant, outcome, *guards, guardrail=None, reason="AssertionError: [x] y"):
    return {"scenario": "payment_outage", "mutant": mutant, "outcome": outcome, "protects": PROTECTS,
            "guards": [{"tag": tag, "held": held} for tag, held in guards], "guardrail": guardrail,
            "reason": None if outcome == "passed" else reason, "duration_s": 1.0}


def test_a_failure_on_a_guard_of_the_disabled_protection_kills_it():
    cell = matrix.judge(record("backoff", "failed", ("fallback_202", True), ("backoff", False)))
    assert (cell["verdict"], cell["guard"]) == ("killed", "backoff")


def test_a_pass_with_the_protection_off_is_a_survivor():
    assert matrix.judge(record("retry", "passed", ("fallback_202", True), ("backoff", True)))["verdict"] == "survived"


def test_a_failure_on_another_protections_guard_is_wrong():
    assert matrix.judge(record("retry", "failed", ("fallback_202", False)))["verdict"] == "wrong"


def test_a_failure_on_a_precondition_or_an_error_is_wrong():
    assert matrix.judge(record("fallback", "failed", ("load", False)))["verdict"] == "wrong"
    assert matrix.judge(record("fallback", "failed", reason="HarnessError: stack"))["verdict"] == "wrong"


def test_a_guardrail_trip_is_never_a_kill():
    tripped = record("fallback", "failed", ("fallback_202", False), guardrail={"condition": "health<50"})
    assert matrix.judge(tripped)["verdict"] == "wrong"


def test_the_matrix_holds_only_when_every_protection_and_every_guard_was_killed():
    kills = [record("fallback", "failed", ("fallback_202", False)),
             record("retry", "failed", ("fallback_202", True), ("backoff", False))]
    summary = matrix.summarise(kills, ["fallback", "retry"], DECLARED)
    assert summary["holds"] and summary["guards"]["payment_outage[backoff]"]["killed_by"] == ["retry"]

    unkilled = matrix.summarise(kills, ["fallback", "retry", "backoff"], DECLARED)
    assert not unkilled["holds"] and unkilled["unkilled_protections"] == ["backoff"]

    only_fallback = matrix.summarise(kills[:1], ["fallback", "retry"], DECLARED)
    assert not only_fallback["holds"] and only_fallback["unproven_guards"] == ["payment_outage[backoff]"]


def test_a_partial_matrix_judges_the_protections_asked_for_not_every_guard():
    summary = matrix.summarise([record("fallback", "failed", ("fallback_202", False))], ["fallback"], DECLARED,
                               complete=False)
    assert summary["holds"] and summary["unproven_guards"] == ["payment_outage[backoff]"]


def test_a_matrix_without_cells_does_not_hold():
    assert not matrix.summarise([], ["fallback"], DECLARED)["holds"]


def test_a_marker_names_one_protection_or_several():
    assert matrix.protected({"a": "retry", "b": ("retry", "backoff")}) == {"a": ("retry",), "b": ("retry", "backoff")}
    assert matrix.guarding({"a": ("retry",), "b": ("retry", "backoff")}) == ["retry", "backoff"]


def test_parts_run_by_separate_workers_merge_into_one_matrix():
    fallback = matrix.summarise([record("fallback", "failed", ("fallback_202", False))], ["fallback"], DECLARED,
                                complete=False)
    retry = matrix.summarise([record("retry", "failed", ("fallback_202", True), ("backoff", False))], ["retry"],
                             DECLARED, complete=False)
    merged = matrix.merge([fallback, retry], ["fallback", "retry"])
    assert merged["holds"] and merged["counts"]["killed"] == 2
    assert not matrix.merge([fallback], ["fallback", "retry"])["holds"]
