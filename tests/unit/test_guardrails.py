"""Guardrail conditions: how they are written, and when they trip (fed samples by hand)."""

import pytest

from harness.errors import HarnessError
from harness.guardrails import Guardrail, parse
from harness.probes import Sample, failed


def sample(ts: float, score: int | None, disk: float | None = None) -> Sample:
    if score is None:
        return failed(ts, "ConnectTimeout")
    return Sample(ts=ts, score=score, level="x", breaker=None, disk_used_percent=disk, ok=True, error=None, services={})


@pytest.mark.parametrize("text,metric,op,threshold,hold", [
    ("health<50", "health", "<", 50, 0), (" health <= 40 for 5s ", "health", "<=", 40, 5),
    ("disk>=95", "disk", ">=", 95, 0), ("health<50 for 2.5s", "health", "<", 50, 2.5),
])
def test_conditions_parse(text, metric, op, threshold, hold):
    condition = parse(text)
    assert (condition.metric, condition.op, condition.threshold, condition.hold_s) == (metric, op, threshold, hold)


@pytest.mark.parametrize(
    "text",
    ["", "health", "health<", "latency<5", "health=50", "health<50 for", "health<50 for 9999s", "health<50; rm -rf /"],
)
def test_bad_conditions_are_one_line_errors(text):
    with pytest.raises(HarnessError) as error:
        parse(text)
    assert "\n" not in str(error.value) and "health<50" in str(error.value)  # says how to write one


def test_trips_once_at_the_first_sample_that_holds():
    trips = []
    guard = Guardrail(parse("health<50"), trips.append)
    assert not guard.feed(sample(1, 90)) and not guard.feed(sample(2, 50))
    assert guard.feed(sample(3, 49))
    assert not guard.feed(sample(4, 10))  # quiet after the trip
    assert trips == [{"condition": "health<50", "ts": 3, "held_since": 3, "observed": 49.0, "level": "x"}]


def test_an_unreachable_edge_counts_as_zero_health():
    trips = []
    assert Guardrail(parse("health<50"), trips.append).feed(sample(1, None))
    assert trips[0]["observed"] == 0.0 and trips[0]["level"] == "unreachable"


def test_a_hold_time_needs_the_condition_to_hold_throughout():
    trips = []
    guard = Guardrail(parse("health<50 for 2s"), trips.append)
    for ts, score in ((0, 40), (1, 40), (1.5, 80), (2, 40), (3, 40)):  # broken at 1.5 s: starts again
        assert not guard.feed(sample(ts, score))
    assert guard.feed(sample(4, 30)) and trips[0]["held_since"] == 2


def test_reset_forgets_a_condition_that_held_before_faults():
    guard = Guardrail(parse("health<50 for 1s"), lambda trip: None)
    guard.feed(sample(0, 10))
    guard.reset()
    assert not guard.feed(sample(1.5, 10)) and guard.feed(sample(2.5, 10))


def test_disk_without_a_reading_does_not_trip():
    assert not Guardrail(parse("disk>=95"), lambda trip: None).feed(sample(1, 100, disk=None))
    assert Guardrail(parse("disk>=95"), lambda trip: None).feed(sample(1, 100, disk=97.0))


def test_a_trip_is_known_to_the_scenario_before_its_faults_heal():
    """The broken behaviour: the trip was kept after heal_all, so a scenario waiting for its
    fault to end could finish, and be reported passed, in between (seen in CI)."""
    from types import SimpleNamespace

    from harness.plugin import TRIP_KEY, _guard

    node = SimpleNamespace(stash=pytest.Stash(), get_closest_marker=lambda name: None)
    request = SimpleNamespace(node=node, config=SimpleNamespace(getoption=lambda name: "health<50"))
    seen_at_heal = []

    class Fault:
        name, target, active = "network.down", "postgres", True

    class Injector:
        active = [Fault()]

        def heal_all(self):
            seen_at_heal.append(TRIP_KEY in node.stash)
            Fault.active = False

    listen = _guard(request, Injector())
    listen(sample(1, 10))
    assert seen_at_heal == [True]
    assert node.stash[TRIP_KEY]["healed"] == ["network.down on postgres"]
