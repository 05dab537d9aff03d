import json
import subprocess

import pytest

from tests.conftest import BIN, run

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def _one_line_exit_2(result):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaos: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _no_reports(reports):
    """Bad input leaves nothing behind: catches the run directory (for junit.xml) made when
    pytest starts, before the input is found bad (the reports are on by default)."""
    assert list(reports.iterdir()) == []


def test_doctor_without_an_engine():
    result = run([str(BIN / "chaos"), "doctor"], NO_ENGINE)
    _one_line_exit_2(result)
    assert "Docker engine is not reachable" in result.stderr and "make engine" in result.stderr


def test_scenarios_without_an_engine(tmp_path):
    result = run([str(BIN / "pytest"), "scenarios/", "-p", "no:cacheprovider", f"--chaos-reports={tmp_path}"],
                 NO_ENGINE)
    _one_line_exit_2(result)
    assert "Docker engine is not reachable" in result.stderr
    _no_reports(tmp_path)


def test_unknown_command_is_one_line():
    _one_line_exit_2(run([str(BIN / "chaos"), "explode"]))


def test_faults_json_lists_the_catalog():
    result = run([str(BIN / "chaos"), "faults", "--json"])
    assert result.returncode == 0
    assert "http.status" in {row["name"] for row in json.loads(result.stdout)}


def test_compose_check_passes_on_the_committed_file():
    result = run([str(BIN / "chaos"), "compose", "--check"])
    assert result.returncode == 0, result.stderr


def test_runbook_covers_every_root_cause():
    result = run([str(BIN / "chaos"), "runbook", "--json"])
    assert result.returncode == 0, result.stdout
    rows = json.loads(result.stdout)["root_causes"]
    assert all(row["scenarios"] for row in rows) and len(rows) == 10


# Bad input to every command: (command line, what the one line must say). Commands that need
# the engine are given none, so nothing can be started or touched by a mistake here.
BAD_INPUT = [
    (["doctor"], "Docker engine is not reachable"),
    (["up", "--sut-mode", "brittle"], "invalid choice: 'brittle'"),
    (["up"], "Docker engine is not reachable"),
    (["up", "--sut-disable", "retry,brakes"], "unknown protection 'brakes'"),
    (["protections", "--all"], "unrecognized arguments: --all"),
    (["matrix", "--protection", "brakes"], "unknown protection 'brakes'"),
    (["matrix", "--workers", "0"], "--workers takes a positive number"),
    (["status", "--interval", "0", "--watch"], "positive number of seconds"),
    (["status", "--run", "20200101T000000-0a0b0c"], "Docker engine is not reachable"),
    (["status", "--run", "../x"], "bad run id '../x'"),
    (["faults", "--table"], "unrecognized arguments: --table"),
    (["inject", "network.explode", "--target", "edge_gateway"], "unknown fault 'network.explode'"),
    # A target is judged by the run's own topology, so without an engine (no run) it can't be.
    (["inject", "network.latency", "--target", "mainframe"], "Docker engine is not reachable"),
    (["inject", "network.latency", "--target", "edge_gateway", "--set", "latency_ms=-5"], "latency_ms"),
    (["inject", "network.latency", "--target", "edge_gateway", "--abort-if", "health=<50"], "bad guardrail"),
    (["heal"], "say what to heal"),
    (["restart", "inventory_service"], "Docker engine is not reachable"),
    (["restart", "inventory_service", "--run", "../x"], "bad run id '../x'"),
    (["restart"], "the following arguments are required: service"),
    (["run", "--stack", "cloud"], "invalid choice: 'cloud'"),
    (["explore", "--budget", "5x"], "bad --budget '5x'"),
    (["explore", "--faults", "network.explode"], "nothing to explore"),
    (["explore", "--sut-disable", "brakes"], "unknown protection 'brakes'"),
    (["replay", "no-such-replay.json"], "can't read replay file no-such-replay.json"),
    (["replay", "Makefile"], "Makefile: (the file): Invalid JSON"),
    (["report", "20200101T000000-0a0b0c"], "no such run"),
    (["report", "../x"], "bad run id '../x'"),
    (["runbook", "--verbose"], "unrecognized arguments: --verbose"),
    (["compose", "now"], "unrecognized arguments: now"),
    (["adopt", "no-such-compose.yml"], "no compose file no-such-compose.yml"),
    (["adopt", "Makefile"], "Makefile is not YAML"),
    (["load", "restart"], "invalid choice: 'restart'"),
    (["load", "start", "--users", "0"], "load out of bounds"),
    (["load", "start", "--duration", "86400"], "load out of bounds"),
    (["load", "start"], "Docker engine is not reachable"),
    (["load", "stop"], "no load is running in this checkout: `chaos load start` starts one"),
    (["load", "stop", "--run", "20200101T000000-0a0b0c"], "no load is running on run 20200101T000000-0a0b0c"),
    (["load", "stop", "--run", "../x"], "bad run id '../x'"),
    (["down", "--run", "20200101T000000-0a0b0c"], "Docker engine is not reachable"),
    (["down", "--run", "20200101T000000-0a0b0c", "--all"], "--run and --all exclude each other"),
    (["down", "--run", "../x"], "bad run id '../x'"),
]


@pytest.mark.parametrize("args,says", BAD_INPUT, ids=[" ".join(args) for args, _ in BAD_INPUT])
def test_bad_input_to_every_command_is_one_line_and_exit_2(args, says, tmp_path):
    result = run([str(BIN / "chaos"), *args], {**NO_ENGINE, "CHAOS_STATE_DIR": str(tmp_path)})
    _one_line_exit_2(result)
    assert says in result.stderr
    assert not (tmp_path / "active").exists()  # nothing recorded, so nothing injected


def test_every_command_has_a_bad_input_case():
    from harness.cli import COMMANDS

    assert {args[0] for args, _ in BAD_INPUT} == set(COMMANDS)


def test_a_bad_guardrail_stops_pytest_before_anything_starts(tmp_path):
    result = run([str(BIN / "pytest"), "scenarios/", "-p", "no:cacheprovider", "--abort-if", "health<<50",
                  f"--chaos-reports={tmp_path}"])
    _one_line_exit_2(result)
    assert "bad guardrail 'health<<50'" in result.stderr
    _no_reports(tmp_path)


def test_an_unknown_protection_stops_pytest_before_anything_starts(tmp_path):
    result = run([str(BIN / "pytest"), "scenarios/", "-p", "no:cacheprovider", "--sut-disable", "brakes",
                  f"--chaos-reports={tmp_path}"])
    _one_line_exit_2(result)
    assert "unknown protection 'brakes'" in result.stderr
    _no_reports(tmp_path)


def test_an_external_stack_that_is_not_there_is_one_line(tmp_path):
    result = run([str(BIN / "pytest"), "scenarios/", "-p", "no:cacheprovider", "--stack=external",
                  "--stack-run", "no-such-run", "-k", "payment_outage", f"--chaos-reports={tmp_path}"])
    _one_line_exit_2(result)
    assert "no stack of run no-such-run is running" in result.stderr
    _no_reports(tmp_path)


def test_a_reader_that_leaves_early_is_not_an_error():
    result = subprocess.run(f"{BIN / 'chaos'} faults | head -1", shell=True, capture_output=True, text=True,
                            timeout=60)
    assert len(result.stdout.splitlines()) == 1 and result.stderr == ""


CHILD = """
import signal, sys, time
def on(signum, frame):
    open(sys.argv[1], "w").write(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, on)
signal.signal(signal.SIGINT, on)
if sys.argv[2] == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def _children(tmp_path, *kinds):
    import sys

    children = []
    for n, kind in enumerate(kinds):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / f"got-{n}"), kind],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"  # its handlers are set
        children.append(child)
    return children


def test_an_interrupt_reaches_every_child_and_is_waited_for(tmp_path):
    """`chaos run`'s pytest and `chaos matrix`'s workers (real processes here): catches a signal
    not passed on, a hang-up passed on as SIGHUP (which ends pytest without its teardown), and
    children not waited for."""
    import signal

    from harness.cli import _stop_children

    children = _children(tmp_path, "plain", "plain")
    _stop_children(children, signal.SIGHUP)
    assert [child.poll() for child in children] == [0, 0]
    assert [(tmp_path / f"got-{n}").read_text() for n in range(2)] == ["SIGTERM", "SIGTERM"]


def test_a_child_that_does_not_end_is_killed_after_the_bound(tmp_path, monkeypatch, capsys):
    """Catches an unbounded wait on a child that ignores the signal (the CLI would hang)."""
    import signal

    from harness import cli

    monkeypatch.setattr(cli, "CHILDREN_TEARDOWN_S", 0.5)
    children = _children(tmp_path, "deaf")
    cli._stop_children(children, signal.SIGTERM)
    assert children[0].poll() == -signal.SIGKILL
    assert "killed it" in capsys.readouterr().err
