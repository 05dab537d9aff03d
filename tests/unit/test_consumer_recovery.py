"""The shop's worker auto-recovery judgements, pure: when the supervisor restarts its consumer and
how it counts a restart (services/shop/supervisor.py), and when the broker monitor pages about a
queue without consumer (services/shop/broker_monitor.py). Both are standard library only and
loaded by path, as the harness loads the shop's health bands."""

import importlib.util
import sys
from pathlib import Path

SHOP = Path(__file__).resolve().parents[2] / "services" / "shop"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"shop_{name}", SHOP / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


supervisor = _load("supervisor")
monitor = _load("broker_monitor")


def test_a_dead_consumer_is_diagnosed_dead():
    """Catches a supervisor that takes an ended consumer task for a healthy one (never restarts it)."""
    assert supervisor.diagnosis(alive=False, in_flight=0, since_progress_s=0.0) == supervisor.DEAD


def test_a_consumer_holding_messages_without_settling_is_wedged_only_past_the_bound():
    """Catches wedge detection that never fires (a stuck handler left for ever) and one that fires
    before its bound (a slow database taken for a wedge, the consumer restarted mid-message)."""
    bound = supervisor.WEDGED_AFTER_S
    assert supervisor.diagnosis(True, in_flight=2, since_progress_s=bound) == supervisor.WEDGED
    assert supervisor.diagnosis(True, in_flight=2, since_progress_s=bound - 1) is None


def test_an_idle_consumer_is_healthy_however_long_it_waits():
    """Catches a consumer restarted for having nothing to do (no message in flight)."""
    assert supervisor.diagnosis(True, in_flight=0, since_progress_s=10 * supervisor.WEDGED_AFTER_S) is None


def test_the_wedge_bound_outlasts_the_longest_legitimate_hold_of_a_message():
    """Catches a bound shortened below the paid mail's "sent" retries (60 s) plus its SMTP timeout."""
    assert supervisor.WEDGED_AFTER_S > 60.0 + 5.0


def test_a_restart_counts_as_succeeded_once_attached_and_gives_a_success_rate():
    """Catches a recovery that is never counted, or counted before the consumer is on the queue."""
    recoveries = supervisor.Recoveries(restarts=1, pending_since=100.0)
    assert recoveries.judge(now=100.5, alive=True, attached=False) is None
    assert recoveries.judge(now=101.0, alive=True, attached=True) == "succeeded"
    assert recoveries.describe() == {"restarts": 1, "succeeded": 1, "failed": 0, "success_rate": 1.0}
    assert recoveries.judge(now=102.0, alive=True, attached=True) is None  # nothing pending: counted once


def test_a_restart_that_dies_or_never_attaches_counts_as_failed():
    """Catches failed restarts left out of the rate (a supervisor that always reports 100 %) and a
    restart that hangs unattached being waited for without end."""
    died = supervisor.Recoveries(restarts=1, pending_since=0.0)
    assert died.judge(now=0.5, alive=False, attached=False) == "failed"
    hung = supervisor.Recoveries(restarts=2, succeeded=1, pending_since=0.0)
    assert hung.judge(now=supervisor.ATTACH_WITHIN_S, alive=True, attached=False) == "failed"
    assert hung.describe()["success_rate"] == 0.5


def test_no_rate_before_any_restart_ended():
    """Catches a success rate of 0 % (or a division by zero) on a consumer never restarted."""
    assert supervisor.Recoveries().describe()["success_rate"] is None


def _run(observations, alerting=True):
    watch = monitor.QueueWatch()
    return [watch.observe(consumers, alerting) for consumers in observations]


def test_the_monitor_pages_at_the_second_empty_check_and_once_per_outage():
    """Catches a page on one empty check (a consumer reconnecting for a second), none at all, or
    one per check while the queue stays empty."""
    assert _run([1, 0, 0, 0, 0]) == [None, None, monitor.FIRING, None, None]
    assert monitor.NO_CONSUMER_FOR_S == 5.0


def test_the_monitor_resolves_when_a_consumer_is_back_after_a_page_only():
    """Catches a missing resolved alert, and a resolved alert for an outage nobody was paged for."""
    assert _run([1, 0, 0, 1]) == [None, None, monitor.FIRING, monitor.RESOLVED]
    assert _run([1, 0, 1, 0, 1]) == [None] * 5


def test_start_up_and_an_unanswering_broker_are_no_consumer_outage():
    """Catches a page while the consumer is still starting (never seen yet), and a broker that
    does not answer (None) counted as a queue without consumer."""
    assert _run([0, 0, 0]) == [None, None, None]
    assert _run([1, 0, None, None, 1]) == [None, None, None, None, None]


def test_without_the_alert_the_monitor_stays_silent():
    """Catches consumer_alert off still paging (the switch the matrix turns off would prove nothing)."""
    assert _run([1, 0, 0, 0, 1], alerting=False) == [None] * 5
