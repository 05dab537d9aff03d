"""The main proof that the scenarios can fail: the mutation matrix on the real stack. Every
protection of the shop, turned off on its own at run time, is killed by a guard that names it,
and every guard that names a protection is killed by one (`chaos matrix` exits 0)."""

import json
import re

import pytest

from harness import protections
from tests.conftest import BIN, run

pytestmark = pytest.mark.integration


def test_every_protection_and_every_guard_is_killed(tmp_path):
    result = run([str(BIN / "chaos"), "matrix", "--json", f"--reports={tmp_path}"], timeout=2400)
    assert result.stdout.strip(), result.stderr[-3000:]
    summary = json.loads(result.stdout)
    wrong = [(c["protection"], c["scenario"], c["verdict"], c["guard"], (c["reason"] or "")[:200])
             for c in summary["cells"] if c["verdict"] != "killed"]
    assert result.returncode == 0 and summary["holds"], (
        f"not killed: {summary['unkilled_protections']}; guards no protection killed: "
        f"{summary['unproven_guards']}; cells not killed: {wrong}")
    assert set(summary["protections"]) == set(protections.names())

    run_dir = next(p for p in tmp_path.iterdir() if (p / "matrix.json").exists() and p.name != "latest")
    page = (run_dir / "report.html").read_text()
    assert "<h2>mutation matrix</h2>" in page and "the matrix holds" in page
    # Opens offline: nothing on the page is fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', page)
