"""Which service is a system's database, broker or alert receiver: the topology's word (readiness
protocol, declared capability), never the shop's service names."""

from __future__ import annotations

import textwrap

import pytest

from harness import topology
from harness.alerts import alerts_service
from harness.datastores import database_params_at, datastore
from harness.errors import HarnessError


def _system(tmp_path, services: str):
    path = tmp_path / "chaos.yaml"
    path.write_text("name: mine\nservices:\n" + textwrap.indent(textwrap.dedent(services), "  "), encoding="utf-8")
    return topology.load(path)


DB = """\
{name}:
  image: postgres
  port: 5432
  readiness: {{sql: {{user: {user}, password: pw, database: app}}}}
  capabilities: {caps}
"""
WEB = """\
web:
  image: python
  port: 8000
  readiness: {http: {path: /health}}
  capabilities: [alerts]
"""


def test_the_database_is_the_service_that_speaks_sql_whatever_its_name(tmp_path):
    """Catches the database looked up by the name "postgres" (a system naming it `db` would get
    a KeyError, or the shop's credentials): it is found by its readiness, and its credentials are
    the ones its own readiness names."""
    system = _system(tmp_path, DB.format(name="db", user="owner", caps="[]") + WEB)
    assert datastore(system, "database") == "db"
    assert database_params_at("127.0.0.1", 1, system=system)["user"] == "owner"


def test_of_two_sql_services_the_one_declaring_the_role_is_the_database(tmp_path):
    """Catches the first sql service taken for the database when another one declares the role."""
    system = _system(tmp_path, DB.format(name="cache", user="a", caps="[]") + DB.format(name="main", user="b",
                                                                                        caps="[database]"))
    assert datastore(system, "database") == "main"


@pytest.mark.parametrize("services, says", [
    (WEB, "has no database"),
    (DB.format(name="one", user="a", caps="[]") + DB.format(name="two", user="b", caps="[]"),
     "declare the capability `database`"),
])
def test_no_or_an_ambiguous_database_is_a_one_line_error(tmp_path, services, says):
    """Catches a missing or ambiguous database answered with a traceback or a guess instead of
    a HarnessError saying what to declare."""
    with pytest.raises(HarnessError, match=says):
        datastore(_system(tmp_path, services), "database")


def test_alerts_are_read_from_the_service_declaring_the_capability(tmp_path):
    """Catches alerts read from a service named "alert_sink" rather than the one declaring
    `alerts`, and a system without one made to have one."""
    assert alerts_service(_system(tmp_path, WEB)) == "web"
    assert alerts_service(_system(tmp_path, DB.format(name="db", user="a", caps="[]"))) is None
