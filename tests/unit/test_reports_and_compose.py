import json

import yaml

from harness import compose, topology
from harness.report import json_report
from tests.unit.test_report_data import run_of, verdict_only


def test_json_report_writes_run_and_scenarios_and_moves_latest(tmp_path):
    for run_id in ("r1", "r2"):
        path = json_report.write(tmp_path / run_id, run_of(run_id), [verdict_only("payment_outage")])
        assert json.loads(path.read_text())["schema_version"] == json_report.SCHEMA_VERSION
    assert (tmp_path / "latest").resolve() == (tmp_path / "r2").resolve()
    scenario = json.loads((tmp_path / "latest" / "payment_outage.json").read_text())
    assert scenario["run_id"] == "r2" and scenario["outcome"] == "passed"


def test_committed_compose_file_matches_the_topology():
    assert compose.drift() == [], "run `chaos compose` and commit the result"


def test_compose_has_every_service_and_publishes_on_loopback_only():
    document = yaml.safe_load(compose.compose_yaml())
    assert set(document["services"]) == set(topology.SERVICES)
    ports = [p for s in document["services"].values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)
    proxies = json.loads(compose.proxies_json())
    assert {p["name"] for p in proxies} == set(topology.PROXIES)
