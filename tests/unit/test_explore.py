"""Exploration's pure parts: schedules, what is drawn, and the search with its shrinking, driven
by synthetic judges on a fake clock (each schedule "takes" 20 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from pydantic import ValidationError

from harness.errors import HarnessError
from harness.explore.schedule import MAX_DURATION_S, MAX_START_S, MAX_STEPS, MIN_DURATION_S, Schedule, Step
from harness.explore.search import UNJUDGED, Judgement, candidates, explore
from harness.explore.space import EXPLORE_RANGES, explorable, milder, parameter, points, schedules
from harness.faults import describe
from tests.fake_clock import FakeClock

RUN_S = 20.0


def step(fault="network.latency", target="payment", start=0.0, duration=1.0, **params) -> Step:
    return Step(fault=fault, target=target, params=params, start_s=start, duration_s=duration)


def judged(rule, clock: FakeClock):
    """A judge applying `rule(schedule) -> {anomaly: evidence}`, each run advancing the clock."""
    def judge(schedule: Schedule) -> Judgement:
        clock.now += RUN_S
        return Judgement(rule(schedule))
    return judge


def slow(schedule: Schedule) -> dict[str, str]:
    return {"lost": "an order went missing"} if any(
        s.fault == "network.latency" and s.params["latency_ms"] >= 500 for s in schedule.steps) else {}


NETWORK = explorable(describe(), only=["network"])


# --- schedules -------------------------------------------------------------------------------

def test_a_schedule_orders_its_steps_and_heals_before_it_injects_at_one_instant():
    """Catches overlapping a step that ends as the next begins (two faults at once for no time)."""
    schedule = Schedule(steps=(step(target="auth", start=1.0), step(start=0.0, duration=1.0)))
    assert [s.target for s in schedule.steps] == ["payment", "auth"]
    assert schedule.events() == [(0.0, "inject", 0), (1.0, "heal", 0), (1.0, "inject", 1), (2.0, "heal", 1)]
    assert schedule.span_s == 2.0 and schedule.size() == (2, 2.0, 2.0)


def raw(target="payment", start=0.0, duration=1.0) -> dict:
    return {"fault": "network.latency", "target": target, "start_s": start, "duration_s": duration}


@pytest.mark.parametrize("bad", [
    dict(steps=()), dict(steps=[raw(target=f"t{i}") for i in range(MAX_STEPS + 1)]),
    dict(steps=[raw(start=MAX_START_S + 0.5)]), dict(steps=[raw(duration=MAX_DURATION_S + 0.5)]),
    dict(steps=[raw(duration=MIN_DURATION_S / 2)]), dict(steps=[raw(), raw(start=2.0)]),
    dict(steps=[{**raw(), "extra": 1}]),
])
def test_a_schedule_out_of_its_bounds_is_refused(bad):
    """Catches an open-ended schedule from a replay file or a hand edit (a 10-minute outage)."""
    with pytest.raises(ValidationError):
        Schedule.model_validate(bad)


def test_a_schedule_reads_back_from_its_json():
    schedule = Schedule(steps=(step(latency_ms=750, stream="downstream"), step("process.pause", "postgres", 1.5, 2)))
    assert Schedule.model_validate_json(schedule.model_dump_json()) == schedule


# --- what is drawn ---------------------------------------------------------------------------

def test_parameters_are_drawn_within_the_explored_range_and_enums_offer_the_default_first():
    low, high = EXPLORE_RANGES["latency_ms"]
    latency = parameter("latency_ms", {"type": "integer", "minimum": 0, "maximum": 60000, "default": 1000})
    assert min(latency.elements) == low and max(latency.elements) == high
    status = parameter("status", {"enum": [500, 503, 429], "default": 503, "type": "integer"})
    assert list(status.elements) == [503, 500, 429]  # shrinks to the default
    assert parameter("order_id", {"type": "string", "minLength": 1}) is None  # an order id can't be guessed
    assert parameter("duration_s", {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None}).value is None


def test_explorable_keeps_the_named_families_and_targets_and_drops_faults_it_cannot_fill():
    """Catches a fault with a required parameter the catalog can't know (message.duplicate's
    order id) drawn and failing every schedule it is in."""
    rows = explorable(describe())
    names = {row["name"] for row in rows}
    assert "message.duplicate" not in names and "network.latency" in names
    only = explorable(describe(), only=["network", "process.pause"], targets=["postgres"])
    assert {row["family"] for row in only} == {"network", "process"} and all(r["targets"] == ["postgres"] for r in only)


def test_nothing_to_explore_is_one_line():
    with pytest.raises(HarnessError) as error:
        explorable(describe(), only=["network"], targets=["no-such-target"])
    assert "\n" not in str(error.value) and "chaos faults" in str(error.value)


@settings(max_examples=50, deadline=None)
@given(schedules(NETWORK))
def test_every_drawn_schedule_is_valid_and_bounded(schedule):
    assert 1 <= len(schedule.steps) <= MAX_STEPS and schedule.span_s <= MAX_START_S + MAX_DURATION_S
    assert Schedule.model_validate_json(schedule.model_dump_json()) == schedule


# --- the search ------------------------------------------------------------------------------

def search(rule, seed=1, budget_s=3600.0, rows=NETWORK, **options):
    clock = FakeClock(0.0)
    options.setdefault("milder", milder(rows))
    return explore(judged(rule, clock), schedules(rows), seed=seed, budget_s=budget_s, clock=clock, **options)


def test_a_failure_is_shrunk_to_one_short_early_step_at_the_mildest_failing_parameter():
    """Catches a search that reports the first failing schedule as found (several steps, long,
    at full strength) instead of the smallest that fails for the same reason."""
    found = search(slow)
    (finding,) = found.findings()
    smallest = finding.smallest.schedule
    assert finding.anomaly == "lost" and found.stopped == "found" and len(smallest.steps) == 1
    (only,) = smallest.steps
    assert only.fault == "network.latency" and only.start_s == 0 and only.duration_s == MIN_DURATION_S
    assert only.params["latency_ms"] == 750  # the grid's first point at or above the 500 that fails
    assert smallest.size() <= finding.first.schedule.size() and slow(smallest)


def test_the_shrinker_runs_only_parts_of_the_failing_schedule():
    """Catches shrinking that runs other faults and targets (each a wasted schedule on a real system)."""
    found = search(slow, rows=explorable(describe(), only=["network", "process"]))
    first = found.findings()[0].first
    pairs = {(s.fault, s.target) for s in first.schedule.steps}
    shrinks = [t for t in found.trials if t.phase == "shrink"]
    assert shrinks and all({(s.fault, s.target) for s in t.schedule.steps} <= pairs for t in shrinks)


def test_the_same_anomaly_class_is_kept_while_shrinking():
    """Catches a shrinker that slips to another failure: a two-step "stuck" schedule shrunk
    into a one-step one that only shows "lost"."""
    def rule(schedule):
        if len(schedule.steps) >= 2:
            return {"stuck": "two faults at once"}
        return {"lost": "an order went missing"} if schedule.steps[0].start_s >= 1 else {}

    def first_two_step(seed):
        return search(rule, seed=seed, order=["stuck", "lost"])

    found = next(f for f in map(first_two_step, range(1, 30)) if f.findings()[0].anomaly == "stuck")
    finding = found.findings()[0]
    assert all(len(t.schedule.steps) == 2 for t in finding.shrinks) and finding.smallest.anomaly == "stuck"
    assert any(t.anomaly == "lost" for t in found.trials if t.phase == "shrink"), "a slip was on offer"


def test_the_budget_bounds_the_search_and_its_shrinking():
    """Catches a search that runs on past its budget (Hypothesis would run 500 schedules), or a
    shrinker that does."""
    found = search(lambda s: {}, seed=3, budget_s=100)
    assert found.stopped == "budget" and not found.findings()
    assert len(found.trials) == 5 and found.elapsed_s == 100
    cut = search(slow, budget_s=2 * RUN_S)
    assert cut.findings() and len(cut.trials) == 2 and cut.stopped == "budget"


def test_a_failure_that_does_not_show_again_is_left_unconfirmed_and_the_search_goes_on():
    """Catches a search that stops at, shrinks and reports a failure the real system showed once
    (an outage that caught an event in flight) and never again: its replay would not reproduce."""
    calls = []

    def once(schedule):
        calls.append(schedule)
        return {"lost": "once"} if len(calls) == 3 else {}

    found = search(once, seed=4, budget_s=400)
    assert not found.findings() and [t.index for t in found.unconfirmed] == [2]
    assert found.trials[3].phase == "confirm" and found.trials[3].schedule == found.trials[2].schedule
    assert len(found.trials) > 4 and found.stopped == "budget"


def test_a_failure_is_run_again_before_it_counts():
    found = search(slow)
    first = found.findings()[0].first
    confirm = found.trials[first.index + 1]
    assert confirm.phase == "confirm" and confirm.schedule == first.schedule and confirm.anomaly == "lost"


def test_one_seed_draws_the_same_schedules():
    runs = [[t.schedule for t in search(lambda s: {}, seed=7, budget_s=200).trials] for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 10


def test_every_shrink_candidate_is_smaller():
    """Catches a candidate as big as the schedule it came from: the greedy shrinker would never end."""
    schedule = Schedule(steps=(step(latency_ms=1500, jitter_ms=0, stream="downstream", toxicity=1.0, start=1.0,
                                    duration=3.0), step("network.down", "auth", 0.5, 2.0)))
    variants = milder(NETWORK)
    rank = {row["name"]: row["params"] for row in NETWORK}

    def weight(s):
        mildness = sum((points(n, rank[st.fault][n]) or [v]).index(v) for st in s.steps for n, v in st.params.items())
        return (len(s.steps), sum(st.duration_s for st in s.steps), sum(st.start_s for st in s.steps), mildness)

    seen = list(candidates(schedule, variants))
    assert len(seen) > 5 and all(weight(c) < weight(schedule) for c in seen)


# --- replay files ----------------------------------------------------------------------------

def test_a_finding_is_written_as_a_replay_file_and_a_scenario_module(tmp_path):
    """Catches a replay file that does not read back (or a module that does not compile): the
    finding could not be run again."""
    from harness.explore import replay

    clock = FakeClock(0.0)
    found = explore(judged(slow, clock), schedules(NETWORK), seed=1, budget_s=3600, clock=clock)
    (path,) = replay.write(tmp_path / "explore", found, "scenarios.shop.explore:SHOP", None, ["idempotency"])
    back = replay.load(path)
    assert back.schedule == found.findings()[0].smallest.schedule and back.seed == 1 and back.anomaly == "lost"
    assert back.shrinks and back.sut_disable == ["idempotency"]
    module = (tmp_path / "explore" / "test_explored_lost.py").read_text()
    compile(module, "test_explored_lost.py", "exec")
    # A person moves it into scenarios/: `make lint` must pass on it as it is.
    lint = subprocess.run([str(Path(sys.executable).with_name("ruff")), "check", "--select", "E,F,I",
                           "--line-length", "120", str(tmp_path / "explore" / "test_explored_lost.py")],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    assert "from scenarios.shop.explore import SHOP as SYSTEM" in module and "--seed 1" in module
    summary = json.loads((tmp_path / "explore" / "explore.json").read_text())
    assert len(summary["trials"]) == len(found.trials) and summary["findings"][0]["replay"] == str(path)


@pytest.mark.parametrize("edit", [
    lambda d: d.pop("schedule"), lambda d: d["schedule"]["steps"][0].update(duration_s=600),
    lambda d: d.update(surprise=1),
])
def test_a_bad_replay_file_is_one_line_naming_the_field(tmp_path, edit):
    from harness.explore import replay

    clock = FakeClock(0.0)
    found = explore(judged(slow, clock), schedules(NETWORK), seed=1, budget_s=3600, clock=clock)
    (path,) = replay.write(tmp_path, found, "m:S", None, [])
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(HarnessError) as error:
        replay.load(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_a_variant_that_changes_nothing_does_not_keep_the_shrinker_going():
    """Catches a shrinker that goes round for ever when a candidate is the schedule it came from
    (its judgement is the cached one, so no schedule run bounds it)."""
    found = search(slow, milder=lambda s: [s])
    assert found.stopped == "found" and found.findings()[0].smallest.schedule.size()[0] == 1


@pytest.mark.parametrize("options,selected", [
    ([], None), (["--explore"], ["test_explore"]), (["-k", "explore"], ["test_explore"]),
    (["--explore-replay", "x.json"], ["test_replay"]),
])
def test_exploring_scenarios_run_only_when_asked_and_then_alone(options, selected):
    """Catches a plain `pytest scenarios/` spending an exploration budget, and `chaos explore`
    (which passes --explore) running every scenario before its search (seen)."""
    root = Path(__file__).resolve().parents[2]
    listed = subprocess.run([str(Path(sys.executable).with_name("pytest")), "scenarios/", "--collect-only", "-q",
                             "-p", "no:cacheprovider", *options], capture_output=True, text=True, cwd=root)
    names = [line.split("::")[1] for line in listed.stdout.splitlines() if "::" in line]
    if selected is None:
        assert names and not any("explore" in name or "replay" in name for name in names)
    else:
        assert [name.split("[")[0] for name in names] == selected, listed.stdout[-2000:]


def test_an_interrupt_returns_what_was_found_so_far():
    """Catches Ctrl-C losing a finding: the search is stopped mid-shrink and must still hand
    back the failing schedule (the scenario writes it, then stops the session)."""
    calls = []

    def interrupted(schedule):
        calls.append(schedule)
        if len(calls) == 4:  # the second shrink candidate (1: found, 2: confirmed, 3: kept)
            raise KeyboardInterrupt
        return {"lost": "an order went missing"}

    found = search(interrupted)
    assert found.stopped == "interrupted" and len(found.trials) == 3
    (finding,) = found.findings()
    assert finding.first.index == 0 and finding.smallest.index == 2


def test_a_schedule_that_cannot_be_judged_is_a_finding_with_its_error():
    """Catches an exception in a schedule's run ending the search silently with nothing found
    (seen: Hypothesis took it for a flaky failure and stopped)."""
    def broken(schedule):
        if len(schedule.steps) > 1:
            raise RuntimeError("evidence unreadable:\n the database did not answer")
        return {}

    found = search(broken, seed=1)
    (finding,) = found.findings()
    assert finding.anomaly == UNJUDGED and "RuntimeError: evidence unreadable: the database" in (
        finding.first.judgement.anomalies[UNJUDGED])
    assert len(finding.smallest.schedule.steps) == 2


def test_the_process_faults_spare_the_witnesses():
    """Catches a search that restarts the mailbox or the vendor and then judges the evidence it
    lost (seen: a restarted mail sink ended a search)."""
    rows = {r["name"]: r for r in explorable(describe(), witnesses=["alert_sink", "payment_gateway"])}
    assert "alert_sink" not in rows["process.restart"]["targets"] and "postgres" in rows["process.restart"]["targets"]
    assert "payment_gateway" not in rows["process.kill"]["targets"]
    assert rows["http.status"]["targets"] == ["payment_gateway", "payment_gateway_b"]  # its own faults still reach it


# --- what the next search remembers ----------------------------------------------------------

def test_a_failure_found_once_is_run_first_by_the_next_search(tmp_path):
    """Catches a search that forgets last night's finding and spends its budget drawing it again
    (or never does, with another seed)."""
    from harness.explore.memory import Memory

    memory = Memory("m:S", ["idempotency"], tmp_path)
    first = search(slow)
    memory.update(first)
    again = search(slow, seed=2, known=memory.known(NETWORK))
    assert again.trials[0].phase == "known" and again.trials[0].anomaly == "lost"
    assert again.findings()[0].first.index == 0
    assert Memory("m:S", [], tmp_path).known(NETWORK) == []  # found with idempotency off: not for the resilient


def test_a_remembered_schedule_that_holds_is_forgotten(tmp_path):
    """Catches a fixed bug whose schedule is run first by every search for ever."""
    from harness.explore.memory import Memory

    memory = Memory("m:S", [], tmp_path)
    memory.update(search(slow))
    assert memory.known(NETWORK)
    memory.update(search(lambda schedule: {}, budget_s=100.0, known=memory.known(NETWORK)))
    assert memory.known(NETWORK) == []


def test_a_remembered_schedule_the_search_may_not_draw_is_left_for_one_that_may(tmp_path):
    """Catches `--explore-faults http` running a remembered network schedule anyway."""
    from harness.explore.memory import Memory

    memory = Memory("m:S", [], tmp_path)
    memory.update(search(slow))
    assert memory.known(explorable(describe(), only=["http"])) == []
    assert memory.known(NETWORK)


# --- the report's drawing of a search --------------------------------------------------------

def test_the_report_draws_every_schedule_the_shrink_steps_and_the_smallest(tmp_path):
    """Catches a report that leaves out what the search did: a schedule not drawn, the anomaly
    not marked on the timeline, a shrink step missing, the smallest schedule not spelled out."""
    from harness.explore import replay
    from harness.report import exploration

    found = search(slow)
    (path,) = replay.write(tmp_path, found, "m:S", None, [])
    figures = {"exploration": replay.summary(found, [path])}
    page = exploration.section(figures)
    (finding,) = found.findings()
    assert page.count("<title>network.") >= sum(len(t.schedule.steps) for t in found.trials)
    assert all(f"#{t.index + 1} {t.phase}" in page for t in found.trials)
    assert page.count("smaller, same anomaly") == len(finding.shrinks) - 1
    smallest = finding.smallest.schedule.steps[0]
    assert f"<td>{smallest.fault}</td><td>{smallest.target}</td>" in page and str(path) in page
    failing = [t for t in found.trials if t.anomaly]
    marked = exploration.marks(figures, found.started_at)
    assert [(round(t, 3), label) for t, label, _ in marked] == [
        (round(t.ended_s, 3), f"#{t.index + 1} lost") for t in failing]
    assert exploration.section({"other": 1}) == "" and exploration.marks(None, 0.0) == []
