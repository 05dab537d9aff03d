"""The pytest plugin: options, the `chaos` marker, fixtures over one stack per session, reports.

Registered through the `pytest11` entry point, so `pytest scenarios/` needs no conftest. The
stack starts once per session (faults are healed and the vendor reset between scenarios);
when the engine is unusable the session stops with one line and exit code 2.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.clients import ShopClient, SinkClient, VendorClient, mint_token
from harness.errors import HarnessError
from harness.faults import Chaos
from harness.ledger import History
from harness.report import json_report

SCENARIO_KEY = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos-harness")
    group.addoption("--sut-mode", choices=("resilient", "fragile"), default="resilient",
                    help="which build of the shop to test (fragile: protections off; scenarios must fail)")
    group.addoption("--chaos-reports", metavar="DIR", default=None,
                    help="write report.json, one JSON per scenario and junit.xml under DIR/<run-id>/")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from harness.stack import new_run_id

    config.addinivalue_line("markers", "chaos(root_cause, runbook): a chaos scenario and what it verifies")
    config.stash[SCENARIO_KEY] = {"run_id": new_run_id(), "started": time.time(), "scenarios": []}
    reports = config.getoption("chaos_reports")
    if reports and not getattr(config.option, "xmlpath", None):
        run_dir = Path(reports) / config.stash[SCENARIO_KEY]["run_id"]
        run_dir.mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(run_dir / "junit.xml")
    # SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so fixtures tear the stack down.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def _fail_fast(message: str) -> None:
    """One line and exit 2. Only called before anything of the run exists (or after the stack
    removed itself), so leaving without pytest's own teardown leaves nothing behind."""
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
        _fail_fast(str(exc))


@pytest.fixture(scope="session")
def sut_mode(pytestconfig: pytest.Config) -> str:
    return pytestconfig.getoption("sut_mode")


@pytest.fixture(scope="session")
def stack(pytestconfig: pytest.Config, sut_mode: str) -> Iterator[Any]:
    """The running shop, started once per session and always removed at its end."""
    from harness.stack import Stack

    try:
        running = Stack(sut_mode=sut_mode, run_id=pytestconfig.stash[SCENARIO_KEY]["run_id"])
        running.__enter__()
    except HarnessError as exc:
        _fail_fast(str(exc))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def chaos(stack: Any) -> Iterator[Chaos]:
    """The fault injector; every fault it made is healed when the test ends, however it ends."""
    injector = Chaos(stack)
    try:
        yield injector
    finally:
        injector.heal_all()


@pytest.fixture
def history() -> History:
    """The test's operation history (the ledger's input)."""
    return History()


@pytest.fixture
def shop(stack: Any, history: History) -> Iterator[ShopClient]:
    """The customer's client, through the edge proxy."""
    client = ShopClient(stack.edge_url, history, token=mint_token(stack.endpoint("auth_service").url))
    yield client
    client.close()


def _fresh(client: Any) -> Iterator[Any]:
    """An observer client emptied first, so each test reads only what it caused."""
    client.reset()
    yield client
    client.close()


@pytest.fixture
def vendor(stack: Any) -> Iterator[VendorClient]:
    """The payment vendor's control API and journal."""
    yield from _fresh(VendorClient(stack.endpoint("payment_gateway").url))


@pytest.fixture
def sink(stack: Any) -> Iterator[SinkClient]:
    """The alert and mail sink."""
    yield from _fresh(SinkClient(stack.endpoint("alert_sink").url))


@pytest.fixture
def scenario_record(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict a scenario fills with figures (timings, counts) that go into its report."""
    record: dict[str, Any] = {}
    request.node.stash[SCENARIO_KEY] = record
    return record


def _scenario_name(item: pytest.Item) -> str:
    return item.name.removeprefix("test_")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    marker = item.get_closest_marker("chaos")
    if marker is None or report.when not in ("setup", "call"):
        return
    if report.when == "setup" and report.passed:
        return
    reason = None
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        reason = crash.message if crash else str(report.longrepr)[-2000:]
    item.config.stash[SCENARIO_KEY]["scenarios"].append({
        "name": _scenario_name(item),
        "nodeid": item.nodeid,
        "root_cause": marker.kwargs.get("root_cause"),
        "runbook": marker.kwargs.get("runbook", []),
        "outcome": report.outcome,
        "duration_s": round(report.duration, 3),
        "reason": reason,
        "figures": item.stash.get(SCENARIO_KEY, {}),
    })


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(SCENARIO_KEY, None)
    reports = session.config.getoption("chaos_reports")
    if not reports or state is None or not state["scenarios"]:
        return
    run = {"run_id": state["run_id"], "started": state["started"], "finished": time.time(),
           "sut_mode": session.config.getoption("sut_mode"), "exit_status": int(exitstatus)}
    path = json_report.write(Path(reports) / state["run_id"], run, state["scenarios"])
    print(f"\nchaos: reports written to {path.parent} (also {Path(reports) / 'latest'})", file=sys.stderr)
