"""Exploration of the shop: generated fault schedules under a steady customer, each judged by
the ledger (its guard, which any protection may fail); a failure is shrunk to the smallest
schedule that fails for the same anomaly class and written as a replay file and a scenario
module (reports/<run>/explore/).

Run only when asked: `pytest scenarios/ -k explore` (or `--explore`; `chaos explore`), with
`--explore-budget`, `--explore-seed`, `--explore-faults`, `--explore-targets`, `--sut-disable`;
the schedules that failed in earlier searches of the same protections run first, unless
`--explore-fresh`.
`--explore-replay FILE` (`chaos replay FILE`) runs a finding again, `--explore-times` times.
"""

from __future__ import annotations

import pytest

from harness.explore import replay, runner, search
from harness.explore.memory import Memory
from harness.explore.space import explorable, milder, schedules
from harness.faults import describe
from harness.guards import expect
from harness.plugin import SCENARIO_KEY, reports_dir, say_past_capture
from scenarios.shop.explore import SHOP


@pytest.mark.explore
@pytest.mark.chaos(root_cause=None)
def test_explore(stack, chaos, explore_settings, scenario_record, pytestconfig):
    settings = explore_settings
    rows = explorable(describe(stack.topology), settings.faults, settings.targets, SHOP.witnesses)
    order = (*SHOP.anomaly_order, *runner.HARNESS_ANOMALIES)

    def judge(schedule):
        return runner.run(stack, schedule, SHOP, settings.seed, injector=chaos)

    def said(trial):
        verdict = trial.anomaly or "held"
        say_past_capture(f"explore: {trial.phase} {trial.index + 1} at {trial.ended_s:.0f}s: {verdict}: "
                         f"{trial.schedule}", pytestconfig)

    disabled = list(pytestconfig.stash[SCENARIO_KEY]["disabled"])
    remembered = Memory(SHOP.import_path, disabled)
    known = [] if settings.fresh else remembered.known(rows)
    found = search.explore(judge, schedules(rows), seed=settings.seed, budget_s=settings.budget_s,
                           order=order, milder=milder(rows), on_trial=said, known=known)
    remembered.update(found)
    run_id = pytestconfig.stash[SCENARIO_KEY]["run_id"]
    files = replay.write(reports_dir(pytestconfig) / run_id / "explore", found, SHOP.import_path,
                         pytestconfig.getoption("chaos_topology"), disabled)
    findings = found.findings()
    scenario_record.update(exploration=replay.summary(found, files))
    if found.stopped == "interrupted":  # written above; now the session stops as asked
        raise KeyboardInterrupt
    expect("ledger", not findings, "; ".join(
        f"{f.anomaly} after {f.smallest.schedule} ({f.smallest.judgement.anomalies[f.anomaly]}); "
        f"replay: chaos replay {path}" for f, path in zip(findings, files)))


@pytest.mark.explore(replay=True)
@pytest.mark.chaos(root_cause=None)
def test_replay(stack, chaos, explore_settings, scenario_record, pytestconfig):
    settings = explore_settings
    found = replay.load(settings.replay)
    outcomes = []
    for n in range(settings.times):
        judgement = runner.run(stack, found.schedule, SHOP, found.seed, injector=chaos)
        outcomes.append(found.anomaly in judgement.anomalies)
        seen = "reproduced" if outcomes[-1] else "held"
        say_past_capture(f"replay {n + 1}/{settings.times}: {seen}: {found.anomaly}", pytestconfig)
    scenario_record.update({"replay": str(settings.replay), "anomaly": found.anomaly, "times": settings.times,
                            "reproduced": sum(outcomes)})
    expect("ledger", not any(outcomes), f"{found.anomaly} reproduced {sum(outcomes)} of {settings.times} times "
                                         f"after {found.schedule}")
