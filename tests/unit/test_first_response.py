"""The manual's first responses, judged on synthetic answers: each way a check could mislead
the on-call engineer (the wrong alert first, df that disagrees with the monitor, a health page
that blames a healthy service, a refusal that names the wrong variable, a mail count that hides
a duplicate, a status page that shows nothing) is caught."""

from __future__ import annotations

from scenarios.shop import first_response as fr

CAUSE = "Payment gateway API returned 503 Service Unavailable."


def alert(what: str, severity: str = "critical", status: str = "firing", ts: float = 1.0, **missing) -> dict:
    fields = {"who": "api_gateway", "when_utc": "now", "where": "node-A", "what": what, "why": "w", "how": "h",
              "status": status, "severity": severity}
    return {"ts": ts, "chaos": {k: v for k, v in fields.items() if k not in missing}}


def test_triage_leads_to_the_most_severe_alert_first():
    """Catches triage by arrival order: a warning that came first hides the critical vendor alert."""
    alerts = [alert("disk at 80 %", "warning", ts=0.5), alert(CAUSE, ts=2.0), alert(CAUSE, status="resolved")]
    assert [a["chaos"]["severity"] for a in fr.triaged(alerts)] == ["critical", "warning"]
    assert fr.triage_gap(alerts, CAUSE) is None


def test_triage_that_cannot_find_the_cause_says_why():
    """Catches an alert that misleads: none firing, the wrong cause graded most severe, no
    severity the manual knows, a 5W1H field missing."""
    assert fr.triage_gap([], CAUSE) == "no firing alert to triage"
    assert "not about" in fr.triage_gap([alert("database slow"), alert(CAUSE, "warning")], CAUSE)
    assert "severity 'urgent'" in fr.triage_gap([alert(CAUSE, "urgent")], CAUSE)
    assert "lacks why" in fr.triage_gap([alert(CAUSE, why=None)], CAUSE)


DF = "Filesystem     1024-blocks  Used Available Capacity Mounted on\ntmpfs 65536 63570 1966 97% /data\n"


def test_df_confirms_the_monitor_only_when_it_agrees_above_the_threshold():
    """Catches a disk alert df does not bear out: another disk watched, a stale reading, below 90 %."""
    assert fr.df_used_percent(DF) == 97.0 and fr.df_used_percent("df: /data: No such file\n") is None
    assert fr.df_gap(97.0, 96.9, 90.0) is None
    assert "below" in fr.df_gap(50.0, 50.0, 90.0)
    assert "monitor reported 40" in fr.df_gap(97.0, 40.0, 90.0)
    assert "no usage" in fr.df_gap(None, 97.0, 90.0)


def test_the_system_health_points_at_the_failing_service_alone():
    """Catches a health page on which the failing service is not the weakest, or shares the
    bottom with a healthy one (the operator would restart the wrong thing)."""
    system = {"services": {"auth_service": {"score": 0}, "api_gateway": {"score": 60}, "inventory_service": {}}}
    assert "['auth_service', 'inventory_service']" in fr.health_gap(system, "auth_service")
    system["services"]["inventory_service"] = {"score": 100}
    assert fr.health_gap(system, "auth_service") is None
    assert "none" in fr.health_gap({}, "auth_service")


def test_the_deployment_confirms_the_variable_the_refusal_names():
    """Catches a refusal that names no variable or the wrong one (set in the deployment after all)."""
    env = ["RABBITMQ_PORT=5672", "RABBITMQ_USER=shop", "PATH=/bin"]
    assert fr.env_gap(env, "RABBITMQ_HOST", "RABBITMQ_HOST is not set") is None
    assert "does not name" in fr.env_gap(env, "RABBITMQ_HOST", "could not connect")
    assert "is set" in fr.env_gap(env, "RABBITMQ_PORT", "RABBITMQ_PORT is not set")


def test_counting_mails_per_order_shows_a_duplicate_and_a_missing_one():
    """Catches a count over all mails (two for one order, none for another, still 'two mails')."""
    counts = fr.mails_per_order([{"order_id": "a"}, {"order_id": "a"}, {"order_id": "x"}], ["a", "b"])
    assert counts == {"a": 2, "b": 0} and "{'a': 2, 'b': 0}" in fr.duplicates_gap(counts)
    assert fr.duplicates_gap({"a": 1}) is None


def test_the_status_page_must_show_the_outage_and_then_clear():
    """Catches a status page that says all is well during the outage, or still shows it after."""
    major, quiet = {"indicator": "major"}, {"indicator": "none"}
    assert fr.status_gap(major, quiet) is None
    assert "no incident" in fr.status_gap(quiet, quiet) and "still shows" in fr.status_gap(major, major)


def test_a_first_response_is_noted_in_the_figures():
    record: dict = {}
    fr.performed(record, "df_check", "df -P /data", "97 %")
    assert record == {"first_responses": [{"step": "df_check", "did": "df -P /data", "saw": "97 %"}]}
