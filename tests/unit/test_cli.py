import json

from tests.conftest import BIN, run

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def _one_line_exit_2(result):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaos: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_doctor_without_an_engine():
    result = run([str(BIN / "chaos"), "doctor"], NO_ENGINE)
    _one_line_exit_2(result)
    assert "Docker engine is not reachable" in result.stderr and "make engine" in result.stderr


def test_scenarios_without_an_engine():
    result = run([str(BIN / "pytest"), "scenarios/", "-p", "no:cacheprovider"], NO_ENGINE)
    _one_line_exit_2(result)
    assert "Docker engine is not reachable" in result.stderr


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
    rows = json.loads(result.stdout)
    assert all(row["scenarios"] for row in rows) and len(rows) == 9
