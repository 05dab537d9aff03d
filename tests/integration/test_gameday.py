"""A game day, driven as a person would drive it: commands typed into a terminal (tmux
send-keys) and the screen read back (capture-pane), against a stack `chaos up` keeps."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from harness import state as harness_state
from harness import topology
from harness.escape import markdown
from harness.faults.attach import attach
from harness.faults.http import marked_charge
from harness.stack import KEPT_LABEL, KEPT_OWNER, RUN_LABEL, port_is_free
from tests.conftest import BIN, ROOT, run

pytestmark = pytest.mark.integration

CHAOS = str(BIN / "chaos")


class Terminal:
    """A tmux session on its own server (so it starts with this process's environment)."""

    def __init__(self, name: str) -> None:
        self.socket = f"chaos-test-{os.getpid()}-{name}"
        self._tmux("new-session", "-d", "-s", name, "-x", "200", "-y", "60", "-c", str(ROOT), "bash --norc --noprofile")
        self.name = name

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True,
                              timeout=10).stdout

    def type(self, line: str) -> None:
        self._tmux("send-keys", "-t", self.name, line, "Enter")

    def interrupt(self) -> None:
        self._tmux("send-keys", "-t", self.name, "C-c")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-t", self.name)

    def wait_for(self, pattern: str, timeout_s: float = 30, absent: bool = False) -> str:
        """The screen once `pattern` (a regex) shows on it (or, with absent, no longer shows)."""
        deadline = time.monotonic() + timeout_s
        while True:
            screen = self.screen()
            if bool(re.search(pattern, screen)) != absent:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{'still' if absent else 'never'} saw {pattern!r} after {timeout_s}s:\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """The module's own fault records (subprocesses and terminals inherit the variable)."""
    path = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(harness_state.STATE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def kept(state, tmp_path_factory):
    """The stack `chaos up` keeps: started for this module (or found up) and removed after it
    (the last test removes it itself, reading the game-day report `chaos down` writes)."""
    result = run([CHAOS, "up"], timeout=300)
    assert result.returncode == 0, result.stderr
    run_id = re.search(r"^(?:already )?up: run (\S+)", result.stdout, re.M).group(1)
    try:
        yield {"run_id": run_id, "stdout": result.stdout, "stack": attach(run_id),
               "started_here": result.stdout.startswith("up:")}
    finally:
        run([CHAOS, "heal", "--all"])
        if result.stdout.startswith("up:"):  # started here: removed here
            run([CHAOS, "down", "--run", run_id, "--reports", str(tmp_path_factory.mktemp("reports"))])


@pytest.fixture
def terminal(request):
    screen = Terminal(request.node.name[:40].replace("[", "-").replace("]", ""))
    yield screen
    screen.close()


def _healthy(stack) -> bool:
    return httpx.get(stack.edge_url + "/health/system", timeout=3).json()["level"] == "green"


def _wait(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout_s}s"
        time.sleep(0.2)


def test_up_prints_every_endpoint_and_keeps_the_stack(kept):
    stack = kept["stack"]
    for name in topology.SERVICES:
        assert re.search(rf"^  {name}\s+\w+://\S*127\.0\.0\.1:\d+", kept["stdout"], re.M), kept["stdout"]
    # Kept once green, by a marker volume of its own; faults injected into it belong to no process.
    marks = stack.client.volumes.list(filters={"label": [f"{RUN_LABEL}={kept['run_id']}", KEPT_LABEL]})
    assert stack.owner == KEPT_OWNER and [v.name for v in marks] == [f"chaos-{kept['run_id']}-kept"]
    assert _healthy(stack)
    again = run([CHAOS, "up"])
    assert again.returncode == 0 and again.stdout.startswith(f"already up: run {kept['run_id']}")
    other = run([CHAOS, "up", "--sut-mode", "fragile"])
    assert other.returncode == 2 and other.stdout == "" and len(other.stderr.strip().splitlines()) == 1
    assert "chaos down" in other.stderr


def test_status_watch_shows_a_fault_appear_and_disappear(kept, terminal):
    terminal.type(f"{CHAOS} status --watch --interval 0.3")
    terminal.wait_for(r"system health 100 green")
    terminal.wait_for(r"ACTIVE FAULTS: none")
    terminal_two = Terminal("injector")
    try:
        terminal_two.type(f"{CHAOS} inject network.latency --target edge_gateway --set latency_ms=250")
        terminal_two.wait_for(r"injected network\.latency on edge_gateway")
        screen = terminal.wait_for(r"network\.latency\s+edge_gateway\s+" + kept["run_id"])
        assert "ACTIVE FAULTS (1)" in screen
        terminal_two.type(f"{CHAOS} heal network.latency")
        terminal_two.wait_for(r"healed 1 fault\(s\)")
    finally:
        terminal_two.close()
    screen = terminal.wait_for(r"ACTIVE FAULTS: none")
    assert "network.latency" not in screen
    terminal.interrupt()
    terminal.wait_for(r"(?m)bash-[\d.]+[$#]\s*$", timeout_s=10)  # back at the prompt: Ctrl-C ends the watch


def test_a_guardrail_heals_a_fault_that_pushes_health_under_its_threshold(kept, terminal):
    stack = kept["stack"]
    terminal.type(f"{CHAOS} inject network.down --target postgres --abort-if 'health<50'")
    terminal.wait_for(r"guardrail: every fault of run \S+ is healed if health<50")
    _wait(lambda: not harness_state.records(), 30, "the guardrail healed the fault")
    (trip,) = [e for e in harness_state.journal(kept["run_id"]) if e["action"] == "abort"]
    assert trip["condition"] == "health<50" and trip["observed"] < 50 and len(trip["healed"]) == 1
    assert stack.toxiproxy.get_proxy("postgres").enabled
    _wait(lambda: _healthy(stack), 30, "health back to green")
    terminal.type(f"{CHAOS} status")
    terminal.wait_for(r"GUARDRAIL TRIPPED \S+: health<50 \(observed [\d.]+\), healed 1 fault\(s\)")


def _watchers(run_id: str) -> list[int]:
    """Pids of the guardrail watcher processes of a run (from every process's command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv[1:5] == ["-m", "harness.guardrails", "watch", run_id]:
            found.append(int(proc.name))
    return found


def test_a_second_abort_if_does_not_start_a_second_watcher(kept):
    """Catches a detached watcher per `--abort-if`: a day of injects with guardrails would pile
    up processes. The second condition joins the run's one watcher, which watches both and
    ends (leaving no watcher file) once the faults are healed."""
    run_id = kept["run_id"]
    _wait(lambda: not _watchers(run_id), 30, "an earlier test's watcher ended with its faults")
    first = run([CHAOS, "inject", "network.latency", "--target", "edge_gateway", "--set", "latency_ms=20",
                 "--run", run_id, "--abort-if", "health<5"])
    assert first.returncode == 0, first.stderr
    assert first.stdout.rstrip().endswith("while faults are active")
    second = run([CHAOS, "inject", "network.latency", "--target", "postgres", "--set", "latency_ms=20", "--run", run_id,
                  "--abort-if", "health<3 for 2s"])
    assert second.returncode == 0, second.stderr
    assert second.stdout.rstrip().endswith("(added to the run's watcher)")
    from harness import guardrails

    listed = json.loads(guardrails.watcher_path(run_id).read_text())
    assert listed["conditions"] == ["health<5", "health<3 for 2s"]
    assert _watchers(run_id) == [int(listed["watcher"].split(":")[0])]
    healed = run([CHAOS, "heal", "--all"])
    assert healed.returncode == 0, healed.stderr
    _wait(lambda: not _watchers(run_id), 30, "the watcher ended with the faults")
    assert not guardrails.watcher_path(run_id).exists()
    assert not [e for e in harness_state.journal(run_id) if e["action"] == "abort" and e["condition"] != "health<50"]


def test_status_json_has_every_endpoint_up_printed(kept):
    """Catches `chaos status --json` without the endpoints: a script driving a game day would
    have to scrape `chaos up`'s text for them."""
    result = run([CHAOS, "status", "--json", "--run", kept["run_id"]])
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["run"]["run_id"] == kept["run_id"]
    printed = dict(re.findall(r"^  (\S.*?)\s{2,}(\S+://\S+)$", kept["stdout"], re.M))
    assert set(topology.SERVICES) <= set(document["endpoints"]) and document["endpoints"] == printed


INJECTOR = """
import os, sys, time
from harness.faults import Chaos
from harness.faults.attach import attach

chaos = Chaos(attach(sys.argv[1]))
for name, target, params in [
        ("network.latency", "edge_gateway", {"latency_ms": 300}), ("http.status", "payment_gateway", {"status": 503}),
        ("disk.fill", "api_gateway", {"percent": 90}), ("auth.key_rotation", "auth_service", {}),
        ("message.malformed_json", "rabbitmq", {"count": 1}), ("process.pause", "alert_sink", {}),
        ("config.missing_env", "inventory_service", {}), ("data.null_fields", "postgres", {"sku": "sku-5"})]:
    chaos.inject(name, target, **params)
print("holding", os.getpid(), flush=True)
time.sleep(600)
"""


def test_heal_all_after_a_sigkill_of_the_injector_leaves_nothing(kept, terminal, tmp_path):
    stack = kept["stack"]
    script = tmp_path / "injector.py"
    script.write_text(INJECTOR)
    terminal.type(f"{BIN / 'python'} {script} {kept['run_id']}")
    screen = terminal.wait_for(r"holding (\d+)", timeout_s=120)
    pid = int(re.search(r"holding (\d+)", screen).group(1))
    assert len(harness_state.records()) == 8
    assert stack.docker_container("alert_sink").status == "paused"
    os.kill(pid, signal.SIGKILL)
    terminal.wait_for(r"Killed")
    terminal.type(f"{CHAOS} heal --all")
    screen = terminal.wait_for(r"healed 8 fault\(s\) in [\d.]+s", timeout_s=120)
    assert harness_state.records() == []
    for proxy in stack.toxiproxy.proxies().values():
        assert proxy.enabled and proxy.toxics() == {}, proxy.name
    client = stack.client
    containers = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={kept['run_id']}"})
    assert {c.status for c in containers} == {"running"}, [(c.name, c.status) for c in containers]
    assert not [c for c in containers if "chaos-harness.replica-of" in c.labels]
    listing = stack.docker_container("api_gateway").exec_run(["ls", "-a", "/data"]).output.decode()
    assert ".chaos-fill" not in listing
    assert marked_charge(stack.endpoint("payment_gateway").url).status_code == 201
    _wait(lambda: _healthy(stack), 30, "health back to green")


ONE_FAULT = """
import sys, time
from harness.faults import Chaos
from harness.faults.attach import attach
Chaos(attach(sys.argv[1])).inject("network.latency", "edge_gateway", latency_ms=400)
print("holding", flush=True)
time.sleep(600)
"""


def test_up_on_a_kept_stack_heals_what_a_killed_injector_left(kept):
    child = subprocess.Popen([str(BIN / "python"), "-c", ONE_FAULT, kept["run_id"]], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert [r.fault for r in harness_state.records()] == ["network.latency"]
    again = run([CHAOS, "up"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"already up: run {kept['run_id']} (resilient shop); healed 1 fault(s)")
    assert harness_state.records() == [] and kept["stack"].toxiproxy.get_proxy("edge_gateway").toxics() == {}


def test_scenarios_run_against_the_kept_stack(kept, tmp_path):
    result = run([CHAOS, "run", "payment_outage", "--stack=external", "--reports", str(tmp_path)], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    document = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert document["run"]["stack"] == "external" and document["run"]["sut_mode"] == "resilient"
    assert [s["name"] for s in document["scenarios"]] == ["payment_outage"]
    assert document["scenarios"][0]["guardrail"] is None
    assert kept["stack"].docker_container("api_gateway").status == "running"  # still up


def test_a_scenario_guardrail_heals_and_fails_the_scenario(kept, tmp_path):
    result = run([CHAOS, "run", "db_outage", "--stack=external", "--abort-if", "health<50",
                  "--reports", str(tmp_path)], timeout=600)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    (scenario,) = json.loads((tmp_path / "latest" / "report.json").read_text())["scenarios"]
    assert scenario["outcome"] == "failed" and scenario["reason"].startswith("[guardrail] health<50")
    assert scenario["guardrail"]["healed"] == ["process.db_outage on postgres"]
    assert "TRIPPED" in (tmp_path / "latest" / "report.html").read_text()
    _wait(lambda: _healthy(kept["stack"]), 60, "health back to green")


OWN_GUARDRAIL = """
import time

import pytest


@pytest.mark.chaos(root_cause="db_outage", abort_if="health<50")
def test_own_guardrail(chaos):
    fault = chaos.inject("network.down", "postgres")
    deadline = time.monotonic() + 20
    while fault.active and time.monotonic() < deadline:  # until the guardrail heals it
        time.sleep(0.1)
"""


def test_a_scenario_marker_sets_its_own_guardrail(kept, tmp_path):
    (tmp_path / "test_own.py").write_text(OWN_GUARDRAIL)
    result = run([str(BIN / "pytest"), str(tmp_path / "test_own.py"), "--stack=external", "-p", "no:cacheprovider",
                  f"--rootdir={tmp_path}", f"--chaos-reports={tmp_path / 'reports'}"], timeout=300)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    (scenario,) = json.loads((tmp_path / "reports" / "latest" / "report.json").read_text())["scenarios"]
    assert scenario["reason"].startswith("[guardrail] health<50 held while faults were active")
    assert scenario["guardrail"]["healed"] == ["network.down on postgres"]
    assert kept["stack"].toxiproxy.get_proxy("postgres").enabled
    _wait(lambda: _healthy(kept["stack"]), 60, "health back to green")


def test_docker_compose_brings_up_the_same_stack(state, tmp_path):
    taken = [port for port in (topology.TOXIPROXY_API_PORT, topology.PROXIES["edge_gateway"].listen_port)
             if not port_is_free(port)]
    if taken:
        pytest.skip(f"loopback ports {taken} are taken; docker-compose.chaos.yml publishes them")
    compose = ["docker-compose", "-f", "docker-compose.chaos.yml", "-p", f"chaos-test-{os.getpid()}"]
    up = run([*compose, "up", "-d"], timeout=300)
    assert up.returncode == 0, up.stderr
    try:
        result = run([str(BIN / "pytest"), "scenarios/", "--stack=external", "--stack-run=compose", "-k",
                      "payment_outage", "-p", "no:cacheprovider", f"--chaos-reports={tmp_path}"], timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        document = json.loads((tmp_path / "latest" / "report.json").read_text())
        assert document["run"]["stack"] == "external" and document["scenarios"][0]["outcome"] == "passed"
        # With no --run and no stack of this checkout, the CLI means the compose stack; it belongs
        # to no checkout, so a plain `chaos down` leaves it.
        # (A checkout of its own: this module's kept stack is this one's.)
        elsewhere = {harness_state.STATE_ENV: str(tmp_path / "another-checkout")}
        status = run([CHAOS, "status", "--json"], env=elsewhere)
        assert json.loads(status.stdout)["run"]["run_id"] == "compose", status.stdout + status.stderr
        assert run([CHAOS, "down"], env=elsewhere).returncode == 0
    finally:
        down = run([CHAOS, "down", "--run", "compose"])
    assert down.returncode == 0, down.stderr
    assert subprocess.run(["docker", "ps", "-aq", "--filter", "label=chaos-harness.run=compose"],
                          capture_output=True, text=True).stdout.strip() == ""


def test_down_writes_the_game_day_report_then_removes_the_stack(kept, tmp_path):
    """Last in this module: every game-day test above is in this report."""
    if not kept["started_here"]:
        pytest.skip("the kept stack was up before this module started: it is not removed here")
    result = run([CHAOS, "down", "--run", kept["run_id"], "--reports", str(tmp_path)], timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"game-day report of run {kept['run_id']}: " in result.stdout
    run_dir = tmp_path / kept["run_id"]
    assert {"report.json", "report.html", "timeline.csv", "incident-game_day.en.md",
            "incident-game_day.ja.md"} <= {p.name for p in run_dir.iterdir()}
    document = json.loads((run_dir / "report.json").read_text())
    (day,) = document["scenarios"]
    assert document["run"]["stack"] == "game-day" and day["name"] == "game_day"
    faults = {w["fault"] for w in day["faults"]}
    assert {"network.latency", "network.down", "http.status", "disk.fill", "process.pause"} <= faults
    assert day["guardrail"]["condition"] == "health<50" and day["figures"]["guardrail_trips"] >= 1
    assert day["outcome"] == "failed" and day["reason"].startswith("[guardrail] health<50")
    assert document["run"]["run_id"] == kept["run_id"] and day["nodeid"] == f"game day {kept['run_id']}"
    own = json.loads((run_dir / "game_day.json").read_text())
    assert own["run_id"] == kept["run_id"] and day["probe"]["samples"] >= 1
    assert len(own["timeline"]["samples"]) == day["probe"]["samples"] and day["ttd_s"] is not None
    assert markdown("[guardrail] health<50") in (run_dir / "incident-game_day.en.md").read_text()
    assert "TRIPPED" in (run_dir / "report.html").read_text()
    assert not (Path(os.environ[harness_state.STATE_ENV]) / "samples" / f"{kept['run_id']}.jsonl").exists()
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={RUN_LABEL}={kept['run_id']}"],
                          capture_output=True, text=True).stdout.strip()
    assert left == ""
