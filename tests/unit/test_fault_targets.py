"""The network faults target the proxies of the topology that is active when a fault is made."""

from pathlib import Path

import pytest

from harness import topology
from harness.errors import HarnessError
from harness.faults import check

NOTES = Path(__file__).resolve().parent.parent / "systems" / "notes" / "chaos.yaml"


def test_network_faults_target_the_active_topologys_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches targets read once at import: after the shop's faults were loaded, the notes
    system's `db` proxy was refused ("can't target 'db'") and the shop's `postgres` accepted."""
    monkeypatch.delenv(topology.TOPOLOGY_ENV, raising=False)
    check("network.down", "postgres")  # the bundled shop's proxy, with the families loaded under it
    monkeypatch.setenv(topology.TOPOLOGY_ENV, str(NOTES))
    assert check("network.down", "db").target == "db"
    with pytest.raises(HarnessError, match="can't target 'postgres'"):
        check("network.latency", "postgres")
