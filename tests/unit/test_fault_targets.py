"""The network faults target the proxies of the topology that is active when a fault is made."""

from pathlib import Path

import pytest

from harness import topology
from harness.errors import HarnessError
from harness.faults import check, check_params

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


def test_a_target_is_judged_by_the_topology_given_not_the_active_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a check that ignores the topology it is handed (a run's own, from `chaos inject`)
    and judges by the active one: the notes run's `queue` proxy refused where the shop is active,
    and the shop's `rabbitmq` accepted for it."""
    monkeypatch.delenv(topology.TOPOLOGY_ENV, raising=False)
    notes = topology.load(NOTES)
    assert check("network.down", "queue", notes).target == "queue"
    with pytest.raises(HarnessError, match="can't target 'rabbitmq': choose one of db, queue"):
        check("network.down", "rabbitmq", notes)


def test_a_parameter_may_share_a_name_with_the_checks_own_arguments() -> None:
    """Catches the topology (or the fault's name) taken as keywords of the check: a fault parameter
    so named would be swallowed by the check instead of judged by the fault's model."""
    with pytest.raises(HarnessError, match="has no parameter system"):
        check("network.down", "postgres", system="x")
    with pytest.raises(HarnessError, match="has no parameter name"):
        check_params("network.down", name="x")
