"""The pytest plugin: options, the `chaos` marker, fixtures over one stack per session, reports.

Registered through the `pytest11` entry point, so `pytest scenarios/` needs no conftest. The
stack starts once per session (faults are healed and the vendor reset between scenarios);
when the engine is unusable the session stops with one line and exit code 2.

Every chaos scenario also gets a health probe (the autouse `record_timeline` fixture) whose samples,
with the fault journal, the order history, the alerts and the loudest log lines, become the
scenario's timeline in the reports (TTD/TTR, plots, incident records), without scenario edits;
and a guard log (harness.guards): which guards ran and held, the only ground on which the
reports and `chaos runbook` call a prescription of the manual verified.

SIGINT and SIGTERM interrupt the session; once teardown runs (after the first one, in every
test's teardown and at the session's end) further ones wait for it (harness.signals), and on an
interrupt the faults of a stack the session started are left to the stack's removal.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pluggy import Result

from harness import guardrails, guards, matrix, observe, protections, recovery, signals
from harness.errors import HarnessError
from harness.faults import Chaos
from harness.faults.base import FaultJournal
from harness.history import History, op_record
from harness.probes import Probe, health_of
from harness.report import json_report, schema, write_all
from harness.runbook import ROOT_CAUSES
from harness.view import StackView

pytest_plugins = ["harness.explore.pytest_plugin"]  # exploration's options and selection

SCENARIO_KEY = pytest.StashKey[dict[str, Any]]()
JOURNAL_KEY = pytest.StashKey[FaultJournal]()  # the chaos fixture's journal: the fault windows
HISTORY_KEY = pytest.StashKey[History]()  # the history fixture's operations
TIMELINE_KEY = pytest.StashKey[dict[str, Any]]()  # what the record_timeline fixture recorded
RECORD_KEY = pytest.StashKey[dict[str, Any]]()  # the scenario's entry in the run's report

PROBE_KEY = pytest.StashKey[Probe]()  # the record_timeline fixture's probe, which guardrails listen to
TRIP_KEY = pytest.StashKey[dict[str, Any]]()  # a guardrail trip during the scenario
GUARDS_KEY = pytest.StashKey[guards.GuardLog]()  # the scenario's guards as they ran
MUTANT_KEY = pytest.StashKey[str]()  # the protection a matrix cell turned off
OPERATOR_KEY = pytest.StashKey["Operator"]()  # the operator fixture: the recovery actions taken
PROTECTS_KEY = pytest.StashKey[dict[str, Any]]()  # the scenario's protects= and preconditions=, checked

PROBE_HZ = 10.0
# Health under 50 (red) for 30 s while faults are active: longer than any scenario expects to be
# red, so the stack is healed rather than left broken; a scenario may set its own (abort_if=...).
DEFAULT_ABORT_IF = "health<50 for 30s"
EXTERNAL_READY_S = 120.0
RECOVERY_LINGER_S = 3.0  # after the last heal, keep probing this long at most to see recovery
# Under the rootdir, not the invocation directory: `pytest -k NAME` from anywhere in the project
# writes to the one place `chaos report` (run from the project's root) reads.
DEFAULT_REPORTS = "reports"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos-harness")
    group.addoption("--sut-mode", choices=("resilient", "fragile"), default="resilient",
                    help="which build of the shop to test (fragile: protections off; scenarios must fail)")
    group.addoption("--sut-disable", action="append", default=[], metavar="NAME",
                    help="turn this protection of the shop off (repeat, or comma-separate; `chaos protections` "
                         "lists them): its guards must fail")
    group.addoption("--matrix", action="store_true", default=False, dest="chaos_matrix",
                    help="the mutation matrix: every scenario once per protection its guards name, with that "
                         "protection alone turned off at run time; writes matrix.json (see harness/matrix.py)")
    group.addoption("--matrix-protection", action="append", default=[], metavar="NAME",
                    help="with --matrix: only these protections (repeat, or comma-separate)")
    group.addoption("--load", metavar="USERS:RATE", default="4:2",
                    help="load for scenarios that run under load: users and orders/s per user (default 4:2)")
    group.addoption("--load-workers", type=int, default=0, metavar="N",
                    help="run Locust distributed: one master and N worker processes (default 0: one process)")
    group.addoption("--stack", choices=("containers", "external"), default="containers", dest="chaos_stack",
                    help="containers: start the shop for this session (default); external: use a stack that is "
                         "already running (`chaos up`, or docker-compose -f docker-compose.chaos.yml up)")
    group.addoption("--stack-per-scenario", action="store_true", default=False,
                    help="a fresh stack for every scenario instead of one per session: for the all-off fragile "
                         "proof, where one scenario's broken shop must not fail the next one's steady state")
    group.addoption("--stack-run", metavar="RUN", default=None,
                    help="with --stack=external: the run to use (default: this checkout's kept stack, else its newest "
                         "running one, else the docker-compose stack)")
    group.addoption("--topology", metavar="FILE", default=None, dest="chaos_topology",
                    help="the system's topology file (default: chaos.yaml in the current directory if there is "
                         "one, else the bundled shop); child processes read the same")
    group.addoption("--abort-if", metavar="CONDITION", default=None,
                    help="guardrail for every scenario, e.g. \"health<50 for 5s\": when it holds while faults are "
                         f"active, every fault is healed and the scenario fails (default: the scenario's own, "
                         f"else \"{DEFAULT_ABORT_IF}\")")
    group.addoption("--chaos-reports", metavar="DIR", default=None,
                    help="where a session with chaos scenarios writes report.json, report.html, timeline.csv, "
                         "incident records, one JSON per scenario and junit.xml: DIR/<run-id>/, and DIR/latest "
                         f"(default: {DEFAULT_REPORTS}/ under pytest's rootdir; see reports/README.md)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from harness.stack import new_run_id

    config.addinivalue_line("markers", "chaos(root_cause, guards, protects, preconditions, abort_if): a chaos "
                            "scenario, the manual's prescription each of its guards proves ({tag: step id or "
                            "None}), the protections each guard protects ({tag: name or names}), the checks that "
                            "only prove the fault took effect, and its guardrail")
    config.stash[SCENARIO_KEY] = {"run_id": new_run_id(), "started": time.time(), "scenarios": [],
                                  "sut_mode": config.getoption("sut_mode"), "declared": {}}
    try:
        from harness import topology

        topology.choose(config.getoption("chaos_topology"))
        topology.active()
        guardrails.parse(config.getoption("abort_if") or DEFAULT_ABORT_IF)
        config.stash[SCENARIO_KEY]["disabled"] = list(protections.checked(config.getoption("sut_disable")))
        config.stash[SCENARIO_KEY]["matrix_only"] = list(protections.checked(config.getoption("matrix_protection")))
    except HarnessError as exc:
        _fail_fast(str(exc), config)
    if not getattr(config.option, "xmlpath", None):  # junit.xml beside the reports (written at the end)
        reports = reports_dir(config)
        junit = reports / config.stash[SCENARIO_KEY]["run_id"] / "junit.xml"
        config.option.xmlpath = str(junit)
        config.stash[SCENARIO_KEY]["own_junit"] = (junit, [d for d in (junit.parent, reports) if not d.exists()])
    # SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so fixtures tear the stack down; once
    # teardown runs, further signals wait for it (harness/signals.py).
    signals.reset()
    signals.install(signals.INTERRUPTS, say=lambda line: say_past_capture(line, config))


def reports_dir(config: pytest.Config) -> Path:
    """Where this session's reports go: --chaos-reports as given (relative to the invocation
    directory, as pytest takes --junitxml), else reports/ under the rootdir."""
    given = config.getoption("chaos_reports")
    return Path(given) if given else config.rootpath / DEFAULT_REPORTS


def pytest_unconfigure(config: pytest.Config) -> None:
    signals.uninstall()


def say_past_capture(line: str, config: pytest.Config) -> None:
    """One line on the terminal's stderr even while pytest captures output (a fixture's teardown)."""
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(line, file=sys.stderr, flush=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """A test's whole teardown is a teardown section: a signal during it waits until every
    fixture of the test is torn down (a KeyboardInterrupt from one finalizer would skip the rest,
    the chaos fixture's heals among them)."""
    with signals.teardown():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Raises an interrupt that came during a test's teardown once that teardown is done, so the
    session stops there and tears down the rest (the stack) as after any Ctrl-C."""
    result = yield
    signals.raise_owed()
    return result


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_as_teardown(session: pytest.Session) -> Iterator[None]:
    """The session's teardown (pytest tears down the stack here) is a teardown section too; a
    session that was interrupted ends with the interrupt's exit code (130 SIGINT, 143 SIGTERM)
    rather than pytest's 2, which the harness keeps for bad input."""
    with signals.teardown():
        result = yield
    code = signals.exit_code()
    if code is not None:
        session.exitstatus = code
    return result


def _fail_fast(message: str, config: pytest.Config | None = None) -> None:
    """One line and exit 2. Only called before anything of the run exists (or after the stack
    removed itself), so leaving without pytest's own teardown leaves nothing behind. Inside a
    fixture pytest captures stderr: capture is suspended so the line reaches the terminal."""
    capture = config.pluginmanager.getplugin("capturemanager") if config is not None else None
    if capture is not None:
        capture.suspend_global_capture(in_=False)
    print(f"chaos: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Checks the engine once, before any test, if a collected test needs the stack."""
    if not any("stack" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from harness.engine import connect

    try:
        connect()
    except HarnessError as exc:
        _fail_fast(str(exc), session.config)


def _stack_scope(fixture_name: str, config: pytest.Config) -> Literal["function", "session"]:
    """One stack per session, or per scenario with --stack-per-scenario (never for an external one)."""
    fresh = config.getoption("stack_per_scenario") and not is_external(config)
    return "function" if fresh else "session"


@pytest.fixture(scope=_stack_scope)
def stack(pytestconfig: pytest.Config) -> Iterator[StackView]:
    """The running shop: started once per session (or per scenario) and always removed at its
    end, or, with --stack=external, a stack that was already running (left running at the end)."""
    if is_external(pytestconfig):
        found = _external(pytestconfig)
        try:
            yield found
        finally:  # the stack's own switches again, when the session changed them
            if "external_disabled" in pytestconfig.stash[SCENARIO_KEY]:
                protections.switch(found, pytestconfig.stash[SCENARIO_KEY]["external_disabled"])
        return
    from harness.engine import connect
    from harness.reaper import reap_abandoned
    from harness.stack import Stack

    state = pytestconfig.stash[SCENARIO_KEY]
    run_id = state["run_id"]
    if pytestconfig.getoption("stack_per_scenario"):  # each stack its own run, named after the session's
        state["stacks"] = state.get("stacks", 0) + 1
        run_id = f"{run_id}-s{state['stacks']}"
    try:
        client = connect()
        reap_abandoned(client, keep=run_id)  # what killed sessions and injectors left, before a start
        running = Stack(sut_mode=pytestconfig.getoption("sut_mode"), run_id=run_id, client=client,
                        disabled=tuple(state["disabled"]))
        running.__enter__()
    except HarnessError as exc:
        _fail_fast(str(exc), pytestconfig)
    try:
        yield running
    finally:
        running.stop()  # a teardown section of its own: a second signal can't cut it short


def _external(config: pytest.Config) -> StackView:
    """The already running stack, once it is green (bounded wait, progress on stderr). Its shop
    build decides the SUT mode the reports name."""
    from harness.faults import registry
    from harness.faults.attach import attach
    from harness.status import wait_green

    try:
        run_id = attach(config.getoption("stack_run")).run_id
        registry.reap_stale()  # faults an earlier, killed session left on it: the reaper's job at a start
        found = wait_green(lambda: attach(run_id), EXTERNAL_READY_S, f"the external stack (run {run_id})")
        mode = found.sut_mode
    except HarnessError as exc:
        _fail_fast(str(exc), config)
    if config.getoption("sut_mode") != mode and "--sut-mode" in " ".join(config.invocation_params.args):
        _fail_fast(f"--sut-mode={config.getoption('sut_mode')} but run {found.run_id} runs the {mode} shop", config)
    config.stash[SCENARIO_KEY]["sut_mode"] = mode
    state = config.stash[SCENARIO_KEY]
    disabled = state["disabled"]
    try:  # what the session asks for, at run time, on top of the stack's own; those again at the end
        if disabled:
            state["external_disabled"] = protections.off_anywhere(found)
            protections.switch(found, [*state["external_disabled"], *disabled])
    except HarnessError as exc:
        _fail_fast(str(exc), config)
    print(f"[stack] using the running stack of run {found.run_id} ({mode} shop"
          f"{', off: ' + ', '.join(disabled) if disabled else ''})", file=sys.stderr, flush=True)
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Keeps every chaos scenario's protects= for the matrix, and with --matrix runs each scenario
    once per protection its guards name (the `mutant` parameter); one without any has no cell
    and is deselected (pytest_collection_modifyitems)."""
    marker = metafunc.definition.get_closest_marker("chaos")
    if marker is None:
        return
    state = metafunc.config.stash[SCENARIO_KEY]
    protects = matrix.protected(marker.kwargs.get("protects"))
    state["declared"][_scenario_of(metafunc.definition)] = {tag: list(names) for tag, names in protects.items()}
    if not metafunc.config.getoption("chaos_matrix"):
        return
    only = state["matrix_only"]
    cells = [name for name in matrix.guarding(protects) if not only or name in only]
    metafunc.parametrize("mutant", cells, indirect=True, ids=[f"off={name}" for name in cells])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the matrix, one cell per scenario and protection: of a scenario that has parameters of
    its own (rabbitmq_config_missing's eight variables), the first set stands for the rest."""
    if not config.getoption("chaos_matrix"):
        return
    seen: set[tuple[str, object]] = set()  # the mutant: a protection's name, or not one
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        mutant = callspec.params.get("mutant") if callspec else None
        key = (_scenario_of(item), mutant)
        # A scenario none of the asked-for protections is guarded by has no cell (not a skip).
        (drop if key in seen or not isinstance(mutant, str) else keep).append(item)
        seen.add(key)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def mutant(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The matrix cell's protection: turned off at run time for this scenario alone (on top of
    whatever the session turned off), and on again once the scenario's faults are healed."""
    name = getattr(request, "param", None)
    if name is None:
        yield None
        return
    stack = request.getfixturevalue("stack")
    base = list(request.config.stash[SCENARIO_KEY]["disabled"])
    protections.switch(stack, [*base, name])
    request.node.stash[MUTANT_KEY] = name
    try:
        yield name
    finally:
        protections.switch(stack, base)


@pytest.fixture(autouse=True)
def _matrix_cell(mutant: str | None) -> str | None:
    """Autouse, so a matrix cell's switch is set before the scenario's own fixtures and turned
    back after they (and the chaos fixture's heals) are done."""
    return mutant


@pytest.fixture
def chaos(stack: StackView, request: pytest.FixtureRequest) -> Iterator[Chaos]:
    """The fault injector; every fault it made is healed when the test ends, however it ends."""
    injector = Chaos(stack)
    request.node.stash[JOURNAL_KEY] = injector.journal
    probe = request.node.stash.get(PROBE_KEY, None)
    guard = _guard(request, injector) if probe is not None else None
    if guard is not None:
        probe.listeners.append(guard)
    try:
        yield injector
    finally:
        if guard is not None:
            probe.listeners.remove(guard)
        with signals.teardown():
            if signals.pending() is not None and not is_external(request.config):
                _skip_heals(injector, signals.noted()[0])
            else:
                injector.heal_all()


def _skip_heals(injector: Chaos, signal_name: str) -> None:
    """On an interrupt, the faults of a stack the session owns are not healed: the stack is
    removed right after, and every heal's proof would only delay that (a CI cancel kills the job
    a few seconds later). Each skipped heal is in the journal, and its record goes, since the
    stack it is on goes with it (or, if this process is killed first, the next start's reaper)."""
    from harness import state

    for fault in reversed(injector.active):
        if not fault.active:
            continue
        fault.active = False
        injector.journal.record("heal_skipped", fault, reason=f"{signal_name}: the stack is removed instead")
        if fault.record_id:
            state.delete(fault.record_id)
            fault.record_id = None
    injector.active.clear()


def _guard(request: pytest.FixtureRequest, injector: Chaos) -> Callable[[Any], None]:
    """The scenario's guardrail as a probe listener: fed while the injector has active faults;
    a trip heals them all and is kept for the report (and fails the scenario)."""
    marker = request.node.get_closest_marker("chaos")
    text = (request.config.getoption("abort_if") or (marker.kwargs.get("abort_if") if marker else None)
            or DEFAULT_ABORT_IF)

    def on_trip(trip: dict[str, Any]) -> None:
        trip["healed"] = [f"{f.name} on {f.target}" for f in injector.active if f.active]
        # Kept before healing: the scenario may be waiting for its fault to end, and must not
        # finish (and be reported passed) between the heal and the trip being known.
        request.node.stash[TRIP_KEY] = trip
        try:
            injector.heal_all()
        except HarnessError as exc:
            trip["error"] = str(exc)

    guard = guardrails.Guardrail(guardrails.parse(text), on_trip)

    def listen(sample: Any) -> None:
        if any(fault.active for fault in injector.active):
            guard.feed(sample)
        else:
            guard.reset()
    return listen


@pytest.fixture
def load_settings(pytestconfig: pytest.Config) -> dict[str, Any]:
    """users, rate and workers for Load(...), from --load and --load-workers."""
    from harness.load import parse_load

    try:
        users, rate = parse_load(pytestconfig.getoption("load"))
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    return {"users": users, "rate": rate, "workers": pytestconfig.getoption("load_workers")}


@pytest.fixture
def history(request: pytest.FixtureRequest) -> History:
    """The test's operation history (the ledger's input)."""
    history = request.node.stash[HISTORY_KEY] = History()
    return history


def is_external(config: pytest.Config) -> bool:
    """Whether the session runs on a stack it did not start (--stack=external): one that is
    read, never reset."""
    chosen: str | None = config.getoption("chaos_stack")
    return chosen == "external"


@pytest.fixture
def scenario_record(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict a scenario fills with figures (timings, counts) that go into its report."""
    record: dict[str, Any] = {}
    request.node.stash[SCENARIO_KEY] = record
    return record


class Operator:
    """The recovery actions a scenario takes as an operator would (the manual's first responses),
    each recorded for its report entry as it was taken."""

    def __init__(self, stack: StackView) -> None:
        self.stack = stack
        self.actions: list[dict[str, Any]] = []

    def restart(self, service: str) -> str:
        """Restarts the service (process.restart_service) and records it; its outcome."""
        from harness.faults.process import restart_service

        action = restart_service(self.stack, service)
        self.actions.append(action.record())
        return action.outcome


@pytest.fixture
def operator(request: pytest.FixtureRequest, stack: StackView) -> Operator:
    """Performs recovery actions on the stack and records them in the scenario's report entry."""
    performed = request.node.stash[OPERATOR_KEY] = Operator(stack)
    return performed


def _gather(stack: StackView, item: pytest.Item, probe: Probe, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The scenario's timeline: raw (samples, ops, journal) and what the reports derive from it."""
    marker = item.get_closest_marker("chaos")
    cause = ROOT_CAUSES.get(marker.kwargs.get("root_cause") or "") if marker else None
    history = item.stash.get(HISTORY_KEY, None)
    return observe.entry(stack, window={"started": probe.started or time.time(), "finished": probe.stopped},
                         probe=probe.stats(), samples=probe.samples, journal=entries,
                         ops=[op_record(op) for op in history.ops] if history else [],
                         services=cause.services if cause else (), manual_line=cause.log_line if cause else None)


@pytest.fixture(autouse=True)
def record_timeline(request: pytest.FixtureRequest) -> Iterator[Probe | None]:
    """Probes the system's health at 10 Hz through every chaos scenario that uses the stack.

    Set up before the scenario's own fixtures, so it is torn down after them: the `chaos`
    fixture's last heals are in the journal, and the probe lingers (bounded) to see recovery.
    """
    if request.node.get_closest_marker("chaos") is None or "stack" not in request.fixturenames:
        yield None
        return
    stack = request.getfixturevalue("stack")
    probe = Probe(health_of(stack), hz=PROBE_HZ).start()
    request.node.stash[PROBE_KEY] = probe
    try:
        yield probe
    finally:
        journal = request.node.stash.get(JOURNAL_KEY, None)
        entries = list(journal.entries) if journal else []
        if recovery.last_heal(entries) is not None and signals.pending() is None:
            probe.wait_until(lambda seen: recovery.recovered_at(entries, seen) is not None, RECOVERY_LINGER_S)
        probe.stop()
        request.node.stash[TIMELINE_KEY] = _gather(stack, request.node, probe, entries)


def _scenario_name(item: pytest.Item) -> str:
    return item.name.removeprefix("test_")


def _scenario_of(item: Any) -> str:
    """The scenario a test item (or its definition) belongs to, without its parameters."""
    name: str = getattr(item, "originalname", item.name)
    return name.removeprefix("test_")


def _declared_protects(item: pytest.Item, marker: pytest.Mark, declared: dict[str, str | None]) -> dict[str, Any]:
    """The marker's protects= and preconditions= after checking them: every guard of the
    scenario (the shared ones aside: any protection may fail the steady state or the ledger, and a
    marker names them only where it expects one to) is either a guard of named protections or a
    precondition, and every name is a protection of the shop, so the matrix can judge each failure."""
    protects = matrix.protected(marker.kwargs.get("protects"))
    preconditions = tuple(marker.kwargs.get("preconditions") or ())
    known = protections.table()
    problems = [f"protects= names unknown protection {name!r}" for names in protects.values()
                for name in names if name not in known]
    tags = {**guards.COMMON, **declared}
    problems += [f"{tag!r} is in protects= or preconditions= but not a guard of the scenario"
                 for tag in (*protects, *preconditions) if tag not in tags]
    problems += [f"guard {tag!r} names no protection: add it to protects= (or, when it only proves the fault "
                 "took effect, to preconditions=)" for tag in declared
                 if tag not in protects and tag not in preconditions and tag not in guards.COMMON]
    problems += [f"guard {tag!r} is both a precondition and a guard of protections" for tag in preconditions
                 if tag in protects]
    if problems:
        pytest.fail(f"{item.nodeid}: {problems[0]}", pytrace=False)
    return {"protects": {tag: list(names) for tag, names in protects.items()}, "preconditions": list(preconditions)}


def _declared_guards(item: pytest.Item, marker: pytest.Mark) -> dict[str, str | None]:
    """The marker's guards= after checking them, so a scenario can't claim a prescription its
    root cause does not have, nor keep the old runbook= list that claimed without proof."""
    if "runbook" in marker.kwargs:
        pytest.fail(f"{item.nodeid}: the chaos marker's runbook= is gone; declare guards={{tag: prescription}} "
                    "(see harness/guards.py)", pytrace=False)
    declared = marker.kwargs.get("guards") or {}
    if not isinstance(declared, dict) or not all(
            isinstance(tag, str) and (p is None or isinstance(p, str)) for tag, p in declared.items()):
        pytest.fail(f"{item.nodeid}: guards= must map guard tags to prescription ids or None, got {declared!r}",
                    pytrace=False)
    cause = ROOT_CAUSES.get(marker.kwargs.get("root_cause") or "")
    if cause is not None:
        steps = {step.id for step in cause.steps}
        unknown = sorted({p for p in declared.values() if p is not None and p not in steps})
        if unknown:
            pytest.fail(f"{item.nodeid}: guards= names {unknown}, not prescriptions of {cause.id} "
                        f"(harness/runbook.py has {sorted(steps)})", pytrace=False)
    return declared


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A fresh guard log for each chaos scenario, active before any of its fixtures or its body."""
    marker = item.get_closest_marker("chaos")
    if marker is not None:
        guards.deactivate()  # whatever an earlier test left active is not this scenario's
        declared = _declared_guards(item, marker)
        item.stash[PROTECTS_KEY] = _declared_protects(item, marker, declared)
        item.stash[GUARDS_KEY] = guards.activate(_scenario_name(item), declared)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    marker = item.get_closest_marker("chaos")
    if marker is None:
        return
    if report.when == "teardown":  # the record_timeline fixture has finished by now
        guards.deactivate(item.stash.get(GUARDS_KEY, None))
        if RECORD_KEY in item.stash and TIMELINE_KEY in item.stash:
            record, gathered = item.stash[RECORD_KEY], item.stash[TIMELINE_KEY]  # updated in place: the run's list
            record.update(schema.scenario_entry({**record, **gathered}, item.nodeid))  # holds the record
        return
    if report.when == "setup" and report.passed:
        return
    trip = item.stash.get(TRIP_KEY, None)
    if trip is not None and report.when == "call" and not report.failed:
        report.outcome = "failed"  # a scenario the guardrail stopped did not show what it meant to
        report.longrepr = guardrails.reason(trip)
    reason = None
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        reason = crash.message if crash else str(report.longrepr)[-2000:]
        if trip is not None and not reason.startswith("[guardrail]"):
            reason = f"[guardrail] {trip['condition']} tripped and healed every fault; then: {reason}"
    log = item.stash.get(GUARDS_KEY, None)
    protects: dict[str, Any] = item.stash.get(PROTECTS_KEY, {"protects": {}, "preconditions": []})
    item.stash[RECORD_KEY] = schema.scenario_entry({
        "name": _scenario_name(item),
        "scenario": _scenario_of(item),
        "mutant": item.stash.get(MUTANT_KEY, None),
        **protects,
        "nodeid": item.nodeid,
        "root_cause": marker.kwargs.get("root_cause"),
        "runbook": guards.prescriptions(log.declared) if log else [],  # the prescriptions its guards claim
        "guards": log.records() if log else [],
        "outcome": report.outcome,
        "duration_s": round(report.duration, 3),
        "reason": reason,
        "figures": item.stash.get(SCENARIO_KEY, {}),
        "guardrail": trip,
        "recovery_actions": item.stash[OPERATOR_KEY].actions if OPERATOR_KEY in item.stash else [],
    }, item.nodeid)
    item.config.stash[SCENARIO_KEY]["scenarios"].append(item.stash[RECORD_KEY])


@pytest.hookimpl(trylast=True)  # after junitxml has written the junit.xml a session without scenarios drops
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(SCENARIO_KEY, None)
    if state is None:
        return
    reports = reports_dir(session.config)
    if not state["scenarios"]:
        _drop_own_junit(state.get("own_junit"))
        return
    fields = {"run_id": state["run_id"], "started": state["started"], "finished": time.time(),
              "sut_mode": state["sut_mode"], "disabled": state["disabled"],
              "stack": session.config.getoption("chaos_stack"), "exit_status": int(exitstatus)}
    run_dir, began = Path(reports) / state["run_id"], time.perf_counter()
    if session.config.getoption("chaos_matrix"):
        only = state["matrix_only"]
        fields["matrix"] = matrix.summarise(state["scenarios"], only or protections.names(), state["declared"],
                                            complete=not only and not session.config.getoption("keyword"))
    run = schema.run_block(fields)
    if "matrix" in run:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "matrix.json").write_text(json.dumps(run["matrix"], indent=2), encoding="utf-8")
    write_all(run_dir, run, state["scenarios"])
    print(f"\nchaos: {len(state['scenarios'])} scenario(s) in {json_report.under_fault_line(run, state['scenarios'])}",
          file=sys.stderr)
    print(f"chaos: reports written to {run_dir} in {time.perf_counter() - began:.2f}s "
          f"(also {reports / 'latest'}); `chaos report` summarises them", file=sys.stderr)


def _drop_own_junit(own: tuple[Path, list[Path]] | None) -> None:
    """A session that ran no chaos scenario (the plugin is loaded by every pytest of the venv)
    leaves no reports: the junit.xml the plugin asked for goes, and the directories made for it."""
    if own is None:
        return
    junit, made = own
    junit.unlink(missing_ok=True)
    for directory in made:  # the run directory first, then reports/ if it was new too
        with contextlib.suppress(OSError):  # not empty: something else wrote there
            directory.rmdir()
