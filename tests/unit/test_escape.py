"""Text from the system, written where people read it: inert in Markdown, no control
characters on the terminal."""

from __future__ import annotations

import json
import re

from harness.escape import markdown, terminal
from harness.report import incident, json_report
from harness.status import render
from tests.conftest import BIN, run
from tests.unit.test_report_data import RUN, scenario
from tests.unit.test_status_render import document

INJECTED = ("all clear\n# FIXED, nothing to see\n## Cause\n- [details](http://evil.example/x) "
            "![pixel](http://evil.example/p.png) <img src=x onerror=alert(1)> <script>x()</script> | cell | "
            "`code` **bold** _it_ &amp; \x1b[2J\r")
ESC = "disk \x1b[31mred\x1b[0m 97%\x1b]0;owned\x07 \x9b2J"


def _with_alert(what: str) -> dict:
    s = scenario()
    s["alerts"] = [{"ts": a["ts"], "chaos": {**a["chaos"], "what": what, "who": what}} for a in s["alerts"]]
    s["logs"]["loudest"] = [{"service": "api_gateway", "event": what, "count": 3}]
    s["faults"] = [{**w, "params": {"note": what}} for w in s["faults"]]
    return s


def test_markdown_injection_in_an_alert_text_comes_out_inert():
    """Catches alert text (and log lines, fault parameters) written raw into the incident
    record: it would add headings, links, an image, HTML and table cells to it."""
    for lang in incident.LANGUAGES:
        text = incident.render(_with_alert(INJECTED), RUN, lang)
        headings = [line for line in text.splitlines() if line.lstrip().startswith("#")]
        assert headings == [f"# {incident.HEADINGS[lang]['title']}: payment_outage"] + [
            f"## {incident.HEADINGS[lang][f]}" for f in incident.FIELDS]
        assert re.search(r"(?<!\\)\]\(", text) is None  # no link or image: every ] escaped
        assert re.search(r"(?<!\\)<", text) is None  # no HTML: every < escaped
        assert re.search(r"(?<!\\)\|", text) is None and "\x1b" not in text and "\r" not in text
        assert "FIXED, nothing to see" in text  # the text is still there to read


def test_markdown_escape_leaves_identifiers_readable():
    """Catches an escape so eager it mangles what every record quotes (service names)."""
    assert markdown("api_gateway returned 503.") == "api_gateway returned 503."
    assert markdown("_x_ *y* [z]") == r"\_x\_ \*y\* \[z\]"


def test_an_esc_in_an_alert_does_not_reach_the_terminal_of_chaos_status():
    """Catches status render passing control characters through: an ESC in an alert text
    would clear or recolour the screen of the person watching the game day."""
    doc = document()
    doc["alerts"][0]["chaos"]["what"] = ESC
    doc["health"]["error"] = "ReadTimeout\x1b[2J"
    text = render(doc)
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "disk \\x1b[31mred" in text  # shown, not sent
    assert terminal("line\nbreak\t") == "line\\nbreak\\t"


def test_an_esc_in_a_log_line_does_not_reach_the_terminal_of_chaos_report(tmp_path):
    """Catches `chaos report` printing a failure reason as it came: reasons quote log lines,
    and an ESC in one would drive the reader's terminal."""
    failed = scenario("payment_outage", "failed", f"[log_line] the shop logged: {ESC}")
    run_dir = tmp_path / RUN["run_id"]
    json_report.write(run_dir, RUN, [failed])
    assert "\\u001b" in (run_dir / "report.json").read_text()  # the record keeps it, escaped by JSON
    result = run([str(BIN / "chaos"), "report", RUN["run_id"], "--reports", str(tmp_path), "--width", "200"])
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x9b" not in result.stdout and "\\x1b[31mred" in result.stdout
    assert json.loads((run_dir / "report.json").read_text())["scenarios"][0]["reason"].endswith(ESC)
