"""`chaos status --watch` as a live table on a terminal, and as plain text everywhere else,
from snapshots made by hand (no stack needed)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from rich.console import Console

from harness import cli, state, status, status_live
from tests.conftest import ROOT
from tests.unit.test_status_render import document

ENDPOINTS = {"edge (clients, through Toxiproxy)": "http://127.0.0.1:4100",
             "postgres": "postgresql://shop:shop@127.0.0.1:4101/shop", "api_gateway": "http://127.0.0.1:4102",
             "payment_gateway": "http://127.0.0.1:4103"}
SERVICES = [{"name": "postgres", "state": "paused", "score": None},
            {"name": "api_gateway", "state": "running", "score": 40},
            {"name": "payment_gateway", "state": "missing", "score": 95}]
FAULTS = [{"id": f"network.down-{target}-{n}", "fault": "network.down", "target": target, "run_id": "r1",
           "params": {}, "age_s": 3.0, "left_s": None} for n, target in enumerate(("postgres", "payment_gateway"))]


def _shown(doc: dict) -> list[str]:
    """The live table as a wide terminal shows it, line by line (no colours)."""
    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    console.print(status_live.table(doc))
    return console.file.getvalue().splitlines()


def _row(lines: list[str], first: str) -> list[str]:
    (line,) = [line for line in lines if line.split()[:1] == [first]]
    return line.split()


def test_every_service_is_a_row_with_its_health_level_and_endpoint():
    """Catches a service missing from the live table (one not running, or with no score), its
    level or its endpoint not shown, or the edge's address (not a service) dropped."""
    lines = _shown(document(services=SERVICES, endpoints=ENDPOINTS))
    assert _row(lines, "postgres") == ["postgres", "paused", "-", "-", ENDPOINTS["postgres"]]
    assert _row(lines, "api_gateway") == ["api_gateway", "running", "40", "red", ENDPOINTS["api_gateway"]]
    assert _row(lines, "payment_gateway") == ["payment_gateway", "missing", "95", "green",
                                              ENDPOINTS["payment_gateway"]]
    assert "edge (clients, through Toxiproxy): http://127.0.0.1:4100" in lines
    assert "system health 40 red  breaker open  disk 97%" in lines


def test_every_active_fault_and_recent_alert_is_shown():
    """Catches a fault not shown (only the first, or only the current run's) or the alerts and
    guardrail trips left out of the live table."""
    trip = {"ts": 0.0, "condition": "health<50", "observed": 0.0, "healed": ["a"]}
    lines = _shown(document(endpoints={}, faults=FAULTS, guardrail_trips=[trip], unreadable=["alerts"]))
    assert "ACTIVE FAULTS (2)" in lines
    for fault in FAULTS:
        assert _row(lines, fault["id"]) == [fault["id"], "network.down", fault["target"], "r1", "3s", "-"]
    assert any("firing   node-A: disk 97%" in line for line in lines)
    assert "GUARDRAIL TRIPPED 00:00:00: health<50 (observed 0.0), healed 1 fault(s)" in lines
    assert "(could not read alerts)" in lines


def test_no_stack_shows_the_faults_on_disk_only():
    """Catches the live table failing (or inventing services) when no stack is running."""
    lines = _shown(document(run=None, endpoints={}, services=[], faults=FAULTS[:1]))
    assert "no stack is running (`chaos up` starts one)" in lines and "ACTIVE FAULTS (1)" in lines
    assert not any(line.split()[:1] == ["SERVICE"] for line in lines)


def test_system_text_reaches_the_terminal_as_text():
    """Catches alert text handed to rich as markup (a `[red]` in it would restyle or vanish) or
    its control characters sent to the terminal of the person watching."""
    doc = document(endpoints={})
    doc["alerts"][0]["chaos"]["what"] = "[bold red]disk[/bold red] \x1b[2J"
    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system="truecolor")
    console.print(status_live.table(doc))
    out = console.file.getvalue()
    assert "[bold red]disk[/bold red] \\x1b[2J" in out and "\x1b[2J" not in out


def test_watch_redraws_until_its_bound_and_leaves_the_last_snapshot():
    """Catches a watch that never ends within --watch-for (an unbounded loop), or one that
    draws the first snapshot only and never the later ones."""
    reads: list[dict] = []

    def read() -> dict:
        reads.append(document(endpoints={}, faults=[{**FAULTS[0], "id": f"record-{len(reads)}"}]))
        return reads[-1]

    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=True)
    assert status_live.watch(read, interval_s=0.01, watch_for_s=0.2, console=console) == 0
    assert len(reads) >= 2 and f"record-{len(reads) - 1}" in console.file.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _status_watch(monkeypatch, stdout: io.StringIO, *flags: str) -> str:
    """`chaos status --watch` over a fixed snapshot, for a moment, writing to `stdout`."""
    monkeypatch.setattr(cli, "_attached_or_none", lambda run, said: None)
    monkeypatch.setattr(status, "snapshot", lambda stack, tail=None: document(services=SERVICES, endpoints=ENDPOINTS))
    monkeypatch.setattr(sys, "stdout", stdout)
    assert cli.main(["status", "--watch", "--watch-for", "0.05", "--interval", "0.01", *flags]) == 0
    return stdout.getvalue()


def test_watch_into_a_pipe_prints_the_plain_table(monkeypatch):
    """Catches the live table (cursor moves, box lines) sent to a pipe or file, where tests and
    scripts read the plain text that `chaos status` has always printed."""
    out = _status_watch(monkeypatch, io.StringIO())
    plain = status.render(document(services=SERVICES, endpoints=ENDPOINTS))
    assert out.startswith(plain + "\n") and set(out.split(plain + "\n")) == {""} and "\x1b" not in out


def test_watch_on_a_terminal_draws_the_live_table(monkeypatch):
    """Catches --watch on a terminal still printing the plain table (no endpoints, no redraw in
    place)."""
    out = _status_watch(monkeypatch, _Terminal())
    assert "ENDPOINT" in out and ENDPOINTS["api_gateway"] in out and "\x1b[" in out


def test_watch_json_on_a_terminal_stays_json(monkeypatch):
    """Catches --watch --json replaced by the live table on a terminal (a script in a terminal
    reads the JSON)."""
    out = _status_watch(monkeypatch, _Terminal(), "--json")
    assert '"faults"' in out and "ENDPOINT" not in out


def test_a_one_shot_status_does_not_import_rich(tmp_path):
    """Catches rich imported by `chaos status` when no live table is drawn (by the CLI at start,
    or by httpx, whose command-line tool imports rich when it is installed): status is kept
    small, and rich is only for a person watching on a terminal."""
    script = ("import sys; from harness import cli; cli._attached_or_none = lambda run, said: None; "
              "code = cli.main(['status']); print('rich' in sys.modules, file=sys.stderr); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, state.STATE_ENV: str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "False"
