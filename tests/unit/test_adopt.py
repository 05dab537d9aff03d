"""`chaos adopt`'s decisions on synthetic compose documents (harness/adopt.py, pure)."""

from pathlib import Path

import pytest
import yaml

from harness import adopt, topology
from harness.errors import HarnessError

HERE = Path("/project")


def adopted(services: dict, **compose) -> adopt.Adoption:
    return adopt.adopt({"services": services, **compose}, HERE, HERE)


def asked(adoption: adopt.Adoption, service: str) -> list[str]:
    return [q.text for q in adoption.questions if q.service == service]


PG = {"image": "postgres:16", "environment": {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p", "POSTGRES_DB": "x"}}


def test_a_database_url_becomes_an_edge_through_the_proxy():
    """Catches: a URL's host:port left real (the client would bypass Toxiproxy), or the user,
    password, path lost in the rewrite."""
    a = adopted({"db": PG, "web": {"image": "app", "expose": [8000],
                                   "environment": ["DATABASE_URL=postgresql://u:p@db:5432/x?sslmode=disable"]}})
    assert a.services["web"]["uses"] == {"db": {"DATABASE_URL": "postgresql://u:p@{host}:{port}/x?sslmode=disable"}}
    assert "DATABASE_URL" not in a.services["web"].get("env", {})  # handed by the edge, not kept real
    assert [(e.client, e.service) for e in a.edges] == [("web", "db")]


def test_a_bare_host_port_and_a_list_of_them_are_edges():
    """Catches: only URLs detected (`queue:5672` values missed), or a second address of the same
    service in one value left real."""
    a = adopted({"queue": {"image": "rabbitmq:3"},
                 "w": {"image": "app", "expose": [1], "environment": {"BROKER": "queue:5672",
                                                                      "PEERS": "queue:5672, queue:5672"}}})
    assert a.services["w"]["uses"]["queue"] == {"BROKER": "{host}:{port}", "PEERS": "{host}:{port}, {host}:{port}"}


def test_a_split_host_and_port_pair_is_one_edge():
    """Catches: `X_HOST=cache` + `X_PORT=6379` asked about as a host without a port, the port
    var left real (the client would dial the proxy host at the real port), or a pair naming a
    port the service does not serve rewritten."""
    a = adopted({"cache": {"image": "redis"},
                 "api": {"image": "app", "expose": [80], "environment": {"REDIS_HOST": "cache", "REDIS_PORT": "6379"}}})
    assert a.services["api"]["uses"] == {"cache": {"REDIS_HOST": "{host}", "REDIS_PORT": "{port}"}}
    assert asked(a, "api") == []
    a = adopted({"cache": {"image": "redis"},
                 "api": {"image": "app", "expose": [80], "environment": {"REDIS_HOST": "cache", "REDIS_PORT": "7000"}}})
    assert a.edges == [] and asked(a, "api") == [
        "REDIS_HOST/REDIS_PORT name cache:7000, but cache serves 6379; left as is"
    ]


def test_a_container_name_or_network_alias_is_the_service_too():
    """Catches: a client dialling a service by its `container_name` or a network alias left
    talking to it directly (only the service key taken for its host)."""
    a = adopted({"db": {**PG, "container_name": "pg-main", "networks": {"back": {"aliases": ["database"]}}},
                 "web": {"image": "app", "expose": [1], "networks": ["back"],
                         "environment": {"A": "pg-main:5432", "B": "postgresql://database:5432/x"}}})
    assert a.services["web"]["uses"] == {"db": {"A": "{host}:{port}", "B": "postgresql://{host}:{port}/x"}}


def test_one_variable_naming_two_services_is_a_question():
    """Catches: `PEERS=a:1,b:2` made an edge of both services with the same variable (one edge's
    template would overwrite the other's, so one client address would point at the wrong proxy)."""
    a = adopted({"a": {"image": "x", "expose": [1]}, "b": {"image": "x", "expose": [2]},
                 "c": {"image": "x", "expose": [3], "environment": {"PEERS": "a:1,b:2"}}})
    assert a.edges == [] and a.services["c"]["env"] == {"PEERS": "a:1,b:2"}
    assert asked(a, "c") == ["PEERS names a, b: one variable, several services; left as is"]


def test_words_that_are_not_addresses_are_not_edges():
    """Catches: a service name inside another word or host (`mydb:5432`, `db.example.com:5432`)
    taken for the service."""
    a = adopted({"db": PG, "web": {"image": "app", "expose": [1], "environment": {
        "A": "postgresql://u:p@mydb:5432/x", "B": "db.example.com:5432", "C": "the db is fine"}}})
    assert a.edges == [] and "uses" not in a.services["web"]
    assert a.services["web"]["env"] == {"A": "postgresql://u:p@mydb:5432/x", "B": "db.example.com:5432",
                                        "C": "the db is fine"}


def test_a_port_the_service_does_not_serve_is_a_question_not_an_edge():
    """Catches: an env value naming a wrong port rewritten anyway (the client, told the proxy,
    would have reached nothing before either) or silently dropped."""
    a = adopted({"db": PG, "web": {"image": "app", "expose": [1], "environment": {"DB": "db:6543"}}})
    assert a.edges == []
    assert asked(a, "web") == ["DB names db:6543, but db serves 5432; left as is"]
    assert a.services["web"]["env"] == {"DB": "db:6543"}


def test_a_host_without_a_port_is_a_question():
    """Catches: `http://api/` or `API=api` turned into `{host}` (the client would dial the proxy
    at the service's port, where nothing listens) instead of asked."""
    a = adopted({"api": {"image": "app", "expose": [8000]},
                 "web": {"image": "app", "expose": [1], "environment": {"U": "http://api/x", "H": "api"}}})
    assert a.edges == []
    assert [t.split(" names")[0] for t in asked(a, "web")] == ["U=http://api/x", "H=api"]


def test_depends_on_without_an_address_is_a_question():
    """Catches: a `depends_on` edge adopted with nothing telling the client (its proxy would be
    faulted while the client talks to the service directly) or dropped without a word."""
    a = adopted(
        {"db": PG, "web": {"image": "app", "expose": [1], "depends_on": {"db": {"condition": "service_healthy"}}}}
    )
    assert a.edges == [] and "uses" not in a.services["web"]
    assert asked(a, "web") == ["depends on db but no env value names its address: how is it told where db is? "
                               "the edge is left direct"]


def test_depends_on_with_an_address_asks_nothing():
    """Catches: the depends_on question asked for an edge the env already adopted."""
    a = adopted({"db": PG, "web": {"image": "app", "expose": [1], "depends_on": ["db"],
                                   "environment": {"D": "postgresql://db:5432/x"}}})
    assert asked(a, "web") == [] and [e.service for e in a.edges] == ["db"]


def test_a_service_with_no_port_is_left_out_and_asked():
    """Catches: a port made up for a service that shows none (readiness would wait on nothing)."""
    a = adopted({"worker": {"build": "./worker"}})
    assert "worker" in a.left_out and "worker" not in a.services
    assert asked(a, "worker")[0].startswith("no port it can see")


def test_a_port_only_clients_name_is_taken_from_them():
    """Catches: a service nobody exposes but whose clients dial `api:9000` left out, or given a
    port other than the one they dial."""
    a = adopted({"api": {"build": "./api"}, "web": {"image": "app", "expose": [1], "environment": {"API": "http://api:9000"}}})
    assert a.services["api"]["port"] == 9000 and [e.service for e in a.edges] == ["api"]


@pytest.mark.parametrize("ports,expected", [
    (["127.0.0.1:8080:8000"], 8000), (["8080:8000/tcp"], 8000), ([{"target": 8000, "published": 8080}], 8000),
    (["8000"], 8000), ([8000], 8000)])
def test_the_container_side_of_ports_is_the_port(ports, expected):
    """Catches: the host side of a `ports:` mapping taken for the port the service serves."""
    assert adopted({"web": {"image": "app", "ports": ports}}).services["web"]["port"] == expected


def test_a_known_image_serves_its_own_port_beside_what_it_publishes():
    """Catches: rabbitmq publishing only its management port 15672 given that as its port (the
    clients dial 5672), and the extra port lost."""
    a = adopted({"queue": {"image": "docker.io/library/rabbitmq:3-management", "ports": ["15672:15672"]},
                 "w": {"image": "app", "expose": [1], "environment": {"AMQP_URL": "amqp://guest:guest@queue:5672/"}}})
    assert a.services["queue"]["port"] == 5672 and a.services["queue"]["ports"] == [15672]
    assert [e.service for e in a.edges] == ["queue"]


def test_a_toxiproxy_of_the_users_own_is_left_out(tmp_path):
    """Catches: a compose file's own `toxiproxy` service written into the topology (the loader
    refuses it: the harness adds Toxiproxy itself), so nothing could be adopted."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(yaml.safe_dump({"services": {"toxiproxy": {"image": "ghcr.io/shopify/toxiproxy:2.12.0"},
                                                    "proxy": {"image": "shopify/toxiproxy", "expose": [8474]},
                                                    "web": {"image": "app", "ports": ["80:80"]}}}))
    written = adopt.run(compose)
    assert set(written.adoption.services) == {"web"}
    assert sorted(q.service for q in written.adoption.questions) == ["proxy", "toxiproxy"]


def test_a_topology_the_loader_refuses_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """Catches: a written topology the loader refuses left on disk, or the refusal naming the
    partial file the user never sees."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    monkeypatch.setattr(adopt, "topology_yaml", lambda adoption, source: "name: Bad\nservices: {}\n")
    with pytest.raises(HarnessError, match=r"does not load \(.*/chaos.yaml:1: name: .*a bug of chaos adopt"):
        adopt.run(compose)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docker-compose.yml"]


def test_a_udp_port_is_a_question():
    """Catches: a UDP port proxied (Toxiproxy speaks TCP only) or dropped without a word."""
    a = adopted({"dns": {"image": "coredns", "ports": ["53:53/udp", "9153:9153"]}})
    assert a.services["dns"]["port"] == 9153
    assert asked(a, "dns") == ["serves udp port 53: Toxiproxy proxies TCP only, so it is left direct"]


@pytest.mark.parametrize("image,env,readiness", [
    ("postgres:16", {"POSTGRES_USER": "n", "POSTGRES_PASSWORD": "s", "POSTGRES_DB": "d"},
     {"sql": {"user": "n", "password": "s", "database": "d"}}),
    ("postgres", {"POSTGRES_PASSWORD": "s"}, {"sql": {"user": "postgres", "password": "s", "database": "postgres"}}),
    ("chaos-harness/rabbitmq:latest", {"RABBITMQ_DEFAULT_USER": "a", "RABBITMQ_DEFAULT_PASS": "b"},
     {"amqp": {"user": "a", "password": "b"}}),
    ("rabbitmq:3", {}, {"amqp": {"user": "guest", "password": "guest"}}),
    ("redis:7", {}, {"tcp": {}}),
])
def test_readiness_of_known_images_reads_their_env(image, env, readiness):
    """Catches: postgres readiness not logging in as the user the image creates (or missing its
    documented defaults), rabbitmq's guest default lost."""
    assert adopted({"s": {"image": image, "environment": env}}).services["s"]["readiness"] == readiness


@pytest.mark.parametrize("test", [["CMD", "curl", "-f", "http://localhost:8000/health"],
                                  "curl -fsS http://127.0.0.1:8000/health || exit 1",
                                  ["CMD-SHELL", "wget -qO- http://localhost:8000/health"]])
def test_an_http_healthcheck_is_readiness_and_health(test):
    """Catches: a service's own http healthcheck ignored (tcp readiness would call a booting app
    ready), its path lost, or its score field made up instead of asked (the file cannot say)."""
    a = adopted({"api": {"image": "app", "expose": [8000], "healthcheck": {"test": test}}})
    body = a.services["api"]
    assert body["readiness"] == {"http": {"path": "/health"}} and body["health"] == {"path": "/health"}
    assert [t.split(";")[0] for t in asked(a, "api")] == ["health: a 200 from /health counts as 100"]


def test_a_healthcheck_on_another_port_or_host_is_not_readiness():
    """Catches: a healthcheck URL of another port (`http://localhost/` is port 80) or of another
    service taken for this service's own."""
    for test in (["CMD", "curl", "http://localhost:9999/health"], ["CMD", "curl", "http://other:8000/health"],
                 "curl -f http://localhost/health"):
        body = adopted({"api": {"image": "app", "expose": [8000], "healthcheck": {"test": test}}}).services["api"]
        assert body["readiness"] == {"tcp": {}} and "health" not in body
    a = adopted({"api": {"image": "app", "expose": [8000], "healthcheck": {"test": "curl http://localhost:9/h"}}})
    assert asked(a, "api") == ["its healthcheck fetches port 9, not 8000 (the port its proxy fronts): readiness is tcp"]


def test_a_healthcheck_shows_the_port_of_a_service_that_exposes_none():
    """Catches: a worker whose only sign of a port is its own healthcheck left out (its edges to
    the database and the queue would not be adopted)."""
    a = adopted({"worker": {"build": "./w", "healthcheck": {"test": ["CMD", "curl", "-f", "http://localhost:8000/health"]}}})
    assert a.services["worker"]["port"] == 8000 and a.services["worker"]["readiness"] == {"http": {"path": "/health"}}


def test_entry_is_what_publishes_a_port_and_nobody_uses():
    """Catches: a published dependency (a database with `ports:` for the developer) taken for
    the system's entry, or the real entry missed."""
    a = adopted({"db": {**PG, "ports": ["5432:5432"]},
                 "web": {"image": "app", "ports": ["8080:8000"], "environment": {"D": "db:5432"}},
                 "worker": {"image": "app", "expose": [9000], "depends_on": ["db"]}})
    assert a.entry == ["web"] and a.topology()["entry"] == ["web"]


def test_build_context_is_relative_to_the_output_file():
    """Catches: a build context written relative to the compose file when the output goes
    elsewhere (the topology would build the wrong directory), or its dockerfile lost."""
    compose = {"services": {"web": {"build": {"context": "./web", "dockerfile": "Dockerfile"}, "expose": [1]}}}
    a = adopt.adopt(compose, Path("/p/app"), Path("/p/out"))
    assert a.services["web"]["build"] == {"context": "../app/web"}
    assert adopt.adopt(compose, Path("/p/app"), Path("/p/app")).services["web"]["build"] == {"context": "./web"}
    compose["services"]["web"]["build"]["dockerfile"] = "docker/Dockerfile.prod"
    assert adopt.adopt(compose, Path("/p"), Path("/p")).services["web"]["build"] == {
        "context": "./web", "dockerfile": "docker/Dockerfile.prod"}
    assert adopt.adopt({"services": {"w": {"build": ".", "expose": [1]}}}, HERE, HERE).services["w"]["build"] == {
        "context": "."
    }


@pytest.mark.parametrize("base,expected", [("chaos-harness/shop:latest", "shop"), ("chaos-harness/python", "python"),
                                           ("postgres:16.4-bookworm", "postgres")])
def test_a_build_base_names_the_harness_image(base, expected):
    """Catches: `args: {BASE: chaos-harness/shop:latest}` lost (the Dockerfile's FROM would have
    no base) or written as a reference the topology's `base:` does not take (a key)."""
    a = adopted({"w": {"build": {"context": ".", "args": {"BASE": base}}, "expose": [1]}})
    assert a.services["w"]["build"] == {"context": ".", "base": expected} and asked(a, "w") == []


@pytest.mark.parametrize("base", ["python:3.12", "chaos-harness/shopx:1"])
def test_a_build_base_that_is_not_a_harness_image_is_asked(base):
    """Catches: a user's own base image taken for one of the harness's, or written as `base:`
    (the loader takes image keys only)."""
    a = adopted({"w": {"build": {"context": ".", "args": {"BASE": base}}, "expose": [1]}})
    assert a.services["w"]["build"] == {"context": "."}
    assert asked(a, "w")[0].startswith(f"builds FROM BASE={base}, not one of the harness's images")


def test_build_args_other_than_base_are_asked():
    """Catches: build args silently dropped (the image would be built differently)."""
    a = adopted({"w": {"build": {"context": ".", "args": ["BASE=chaos-harness/python:latest", "VERSION=2"]},
                       "expose": [1]}})
    assert asked(a, "w") == ["build args VERSION are not carried over (the topology passes BASE only)"]


def test_env_forms_and_commands_read_as_compose_reads_them():
    """Catches: list-form env split at a second `=`, a bare `K` (from the shell) given an empty
    value, YAML booleans written as Python's `True`, a string command not split shell-like."""
    assert adopt.env_mapping(["A=x=y", "B", "C="]) == {"A": "x=y", "C": ""}
    assert adopt.env_mapping({"D": True, "E": 5, "F": None}) == {"D": "true", "E": "5"}
    assert adopt.command_list("python -m w --name 'a b'") == ["python", "-m", "w", "--name", "a b"]


def test_braces_in_values_stay_as_written(tmp_path):
    """Catches: a `{`/`}` in a user's value (JSON, `${VAR}`) escaped or taken for a placeholder:
    the service would start with another value than compose gives it."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(yaml.safe_dump({"services": {"db": PG, "w": {"image": "app", "expose": [1], "environment": {
        "J": '{"a": 1}', "D": "postgresql://db:5432/${DB:-x}"}}}}))
    loaded = adopt.run(compose).topology
    env = loaded.service_env(loaded.services["w"], "resilient")
    assert env["J"] == '{"a": 1}' and env["D"] == f"postgresql://toxiproxy:{loaded.proxies['db'].listen_port}/${{DB:-x}}"


def test_a_value_holding_a_placeholder_is_asked(tmp_path):
    """Catches: a user's value holding `{port}` or `{run.x}` written as it is (the loader would
    refuse the file, or fill the value with the proxy's port)."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(yaml.safe_dump({"services": {"w": {"image": "app", "expose": [1], "environment": {
        "FMT": "listen on {port}", "OK": "{name}"}}}}))
    written = adopt.run(compose)
    assert written.topology.services["w"].env == {"OK": "{name}"}
    assert [q.text.split(" holds")[0] for q in written.adoption.questions] == ["FMT=listen on {port}"]


def test_names_become_topology_names():
    """Catches: a compose name with `-` or capitals written as a topology name the loader refuses,
    or its clients' edges lost after the rename."""
    a = adopted({"my-api": {"image": "app", "expose": [80]},
                 "web": {"image": "app", "expose": [1], "environment": {"A": "http://my-api:80"}}})
    assert "my_api" in a.services and a.services["web"]["uses"] == {"my_api": {"A": "http://{host}:{port}"}}
    assert a.renamed == {"my-api": "my_api"}


@pytest.mark.parametrize("document,said", [
    ({"version": "3"}, "no `services:`"), ({"services": {"a": "x"}}, "not a mapping"),
    ({"services": {"a": {"ports": [1]}}}, "neither `image:` nor `build:`"),
    ({"services": {"a-b": {"image": "x"}, "a_b": {"image": "x"}}}, "rename one"),
    ({"services": {"a": {"image": "x", "ports": [{"published": 80}]}}}, "no container port"),
    ({"services": {"a": {"image": "x", "ports": ["80:http"]}}}, "is not a compose port"),
    ({"services": {"a": {"image": "x", "environment": "A=1"}}}, "expected a list of K=V or a mapping")])
def test_bad_documents_are_one_harness_error(document, said):
    """Catches: a non-compose document failing with a traceback (KeyError, AttributeError)."""
    with pytest.raises(HarnessError, match=said):
        adopt.adopt(document, HERE, HERE)


def test_read_compose_says_what_is_wrong(tmp_path):
    """Catches: a missing file, a non-YAML file or a YAML file without services read as a
    traceback or as an empty system."""
    with pytest.raises(HarnessError, match="no compose file"):
        adopt.read_compose(tmp_path / "nope.yml")
    (tmp_path / "bad.yml").write_text("services: [\n")
    with pytest.raises(HarnessError, match="is not YAML at line"):
        adopt.read_compose(tmp_path / "bad.yml")
    (tmp_path / "list.yml").write_text("- a\n")
    with pytest.raises(HarnessError, match="no `services:`"):
        adopt.read_compose(tmp_path / "list.yml")
    (tmp_path / "bad-port.yml").write_text("services: {a: {image: x, ports: ['80:http']}}\n")
    with pytest.raises(HarnessError, match=f"^{tmp_path / 'bad-port.yml'}: port '80:http'"):
        adopt.run(tmp_path / "bad-port.yml")  # the file is named, and nothing is written
    assert not (tmp_path / "chaos.yaml").exists()


def test_the_written_file_marks_questions_and_comments_out_what_is_left_out():
    """Catches: a left-out service written live (the topology would not load), or a question
    printed but not written where the user edits."""
    a = adopted({"web": {"image": "app", "ports": ["8080:8000"], "environment": {"H": "worker"}},
                 "worker": {"build": "./w"}})
    text = adopt.topology_yaml(a, "docker-compose.yml")
    assert "  # ? no port it can see" in text and "  # worker:\n" in text and "\n  worker:" not in text
    assert "  # ? H names worker, which has no port of its own here; left as is\n  web:\n" in text
    assert set(yaml.safe_load(text)["services"]) == {"web"}


COMPOSE = """
services:
  db: {image: "postgres:16", environment: {POSTGRES_PASSWORD: p}}
  web: {build: ./web, ports: ["8080:8000"], environment: [DATABASE_URL=postgresql://postgres:p@db:5432/postgres]}
"""


def test_run_writes_beside_the_compose_file_and_never_overwrites_unasked(tmp_path):
    """Catches: an existing chaos.yaml (the user's edits) overwritten without --force, the
    compose file itself overwritten even with it, or a partial file left by a refused run."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    written = adopt.run(compose)
    made = ["chaos.yaml", "docker-compose.chaos.yml", "toxiproxy.chaos.json"]
    assert [p.name for p in written.files] == made and all(p.parent == tmp_path for p in written.files)
    chaos_yaml = tmp_path / "chaos.yaml"
    chaos_yaml.write_text("# edited\n")
    with pytest.raises(HarnessError, match="chaos.yaml exists: pass --force"):
        adopt.run(compose)
    assert chaos_yaml.read_text() == "# edited\n"
    chaos_yaml.unlink()
    with pytest.raises(HarnessError, match="docker-compose.chaos.yml exists: pass --force"):
        adopt.run(compose)  # the generated compose file is the user's too once written
    assert not chaos_yaml.exists() and not list(tmp_path.glob(".*partial"))  # nothing left behind
    adopt.run(compose, force=True)
    assert "{host}:{port}" in chaos_yaml.read_text()
    with pytest.raises(HarnessError, match="is the compose file being adopted"):
        adopt.run(compose, tmp_path / "docker-compose.yml", force=True)
    assert compose.read_text() == COMPOSE
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*made, "docker-compose.yml"])


def test_the_written_topology_loads_and_hands_clients_the_proxy(tmp_path):
    """Catches: a written topology the harness's loader refuses, or one whose client is given the
    real address (or no address) instead of its proxy's."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    written = adopt.run(compose)
    loaded = topology.load(written.files[0])
    assert set(loaded.proxies) == {"db", "web"} and loaded.entry == ("web",)
    env = loaded.service_env(loaded.services["web"], "resilient")
    assert env["DATABASE_URL"] == f"postgresql://postgres:p@toxiproxy:{loaded.proxies['db'].listen_port}/postgres"
    generated = yaml.safe_load((tmp_path / "docker-compose.chaos.yml").read_text())
    assert generated["services"]["web"]["environment"]["DATABASE_URL"] == env["DATABASE_URL"]
    assert generated["services"]["web"]["build"]["context"] == "web"


def test_run_with_output_elsewhere_builds_from_the_compose_files_directory(tmp_path):
    """Catches: -o in another directory keeping `./web` (the topology would build a context that
    is not there)."""
    (tmp_path / "app").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "app" / "docker-compose.yml").write_text(COMPOSE)
    written = adopt.run(tmp_path / "app" / "docker-compose.yml", tmp_path / "out" / "notes.yaml")
    assert yaml.safe_load(written.files[0].read_text())["services"]["web"]["build"] == {"context": "../app/web"}
    assert written.topology.services["web"].build.context == tmp_path / "app" / "web"
    assert written.adoption.name == "app"  # the compose file's directory, as compose names a project


def test_the_command_prints_what_it_found_and_compose_rewrites_the_files(tmp_path, monkeypatch, capsys):
    """Catches: `chaos adopt` not printing its edges and questions, or `chaos compose --topology`
    failing (a traceback) on a topology outside this checkout, where adopted systems live."""
    from harness import cli

    monkeypatch.setenv(topology.TOPOLOGY_ENV, str(topology.BUNDLED))  # restored after: main() sets it
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    assert cli.main(["adopt", str(compose)]) == 0
    out = capsys.readouterr().out
    assert "  web -> db via env DATABASE_URL\n" in out and "entry: web\n" in out
    assert "next: `chaos up --topology" in out  # no questions: nothing to answer first
    (tmp_path / "docker-compose.chaos.yml").unlink()
    assert cli.main(["compose", "--topology", str(tmp_path / "chaos.yaml")]) == 0
    assert (tmp_path / "docker-compose.chaos.yml").exists()
