"""The operations manual's text (its log lines, root causes, first responses and permanent fixes,
in English and Japanese) lives in harness/runbook.py only; scenarios and reports read it from
there, so the manual is changed in one place and no copy drifts from it. The shop's services
print the log lines themselves: they are the system under test, not read here."""

import ast
from pathlib import Path

from harness.runbook import ROOT_CAUSES

ROOT = Path(__file__).resolve().parent.parent.parent
RUNBOOK = ROOT / "harness" / "runbook.py"
SEARCHED = ("harness", "scenarios")


def manual_texts() -> set[str]:
    """Every text of the manual (and the incident records) runbook.py holds, without its closing full stop (a copy that
    dropped it is still a copy)."""
    texts = set()
    for rc in ROOT_CAUSES.values():
        if rc.source == "design":  # the harness's own (the storm), not in the source documents
            continue
        texts |= {rc.title, rc.title_ja, *(s.text for s in rc.steps), *(s.text_ja for s in rc.steps)}
        if rc.log_line:
            texts.add(rc.log_line)
    return {text.rstrip(".。") for text in texts}


def string_constants(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal of a module (adjacent literals are one), f-strings'
    literal parts included."""
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def copies(texts: set[str], files: list[Path]) -> list[str]:
    """'file:line: text' for each literal that holds a text of the manual."""
    return [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{line}: {text!r}"
            for path in files for line, literal in string_constants(path) for text in sorted(texts) if text in literal]


def test_a_copy_of_the_manual_is_found_wherever_it_is_written(tmp_path):
    """Catches an audit that misses a copy: a log line in a scenario's constant, one without its
    full stop inside an f-string, a Japanese prescription in a report's table."""
    module = tmp_path / "copy.py"
    module.write_text('LINE = "Database connection timed out."\n'
                      'def f(x):\n    return f"Database connection timed out ({x})"\n'
                      'JA = {"fallback": "フォールバック: 注文を失敗させず PAYMENT_PENDING として受け付ける"}\n',
                      encoding="utf-8")
    found = copies(manual_texts(), [module])
    assert sorted(entry.split(":")[1] for entry in found) == ["1", "3", "4"], found


def test_the_manuals_text_is_written_in_the_runbook_only():
    """Catches a scenario or a report that keeps its own copy of a log line, a root cause's
    name or a prescription (English or Japanese) instead of reading harness/runbook.py."""
    files = sorted(p for top in SEARCHED for p in (ROOT / top).rglob("*.py") if p != RUNBOOK)
    assert copies(manual_texts(), files) == []
