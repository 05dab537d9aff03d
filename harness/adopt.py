"""`chaos adopt`: a user's docker-compose file read into a topology (chaos.yaml).

Every edge of the user's stack is to go through Toxiproxy, so the client must be handed the
proxy's address instead of the real one. Compose files say who talks to whom in two ways:
`depends_on` (order only, no address) and environment values that name another service's
host and port (`postgresql://u:p@db:5432/x`, `queue:5672`, `DB_HOST=db` + `DB_PORT=5432`).
Only the second can be rewritten to `{host}:{port}`, so an edge is adopted only where an env
value names the address; everything else that cannot be decided from the file (no port to be
seen, a port the service does not serve, a host without a port) becomes a question that is
printed and written into the output as a comment, never a silent guess.

Everything here but `read_compose` and `run` is a pure function of the compose document (the
known images and the address forms are tables), so the decisions are unit tested on synthetic
dicts (tests/unit/test_adopt.py); `run` writes the files, checked by the harness's loader.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from harness import compose, topology
from harness.errors import HarnessError
from harness.images import IMAGES
from harness.topology import Topology

DEFAULT_OUTPUT = "chaos.yaml"
HEADER = ("# Written by `chaos adopt {source}`: every edge below goes through a Toxiproxy proxy.\n"
          "# Lines starting with `# ?` are questions it could not decide: answer them by editing this file.\n")


# --- What an image says about itself -------------------------------------------------------------

def _sql(env: dict[str, str]) -> dict[str, Any]:
    """The postgres image's own defaults: user postgres, database named like the user."""
    user = env.get("POSTGRES_USER") or "postgres"
    return {"sql": {"user": user, "password": env.get("POSTGRES_PASSWORD", ""),
                    "database": env.get("POSTGRES_DB") or user}}


def _amqp(env: dict[str, str]) -> dict[str, Any]:
    """The rabbitmq image's own defaults: guest/guest."""
    return {"amqp": {"user": env.get("RABBITMQ_DEFAULT_USER") or "guest",
                     "password": env.get("RABBITMQ_DEFAULT_PASS") or "guest"}}


def _tcp(env: dict[str, str]) -> dict[str, Any]:
    return {"tcp": {}}


@dataclass(frozen=True)
class KnownImage:
    """What a well-known image serves when the compose file does not say: its port, and how
    the harness knows it is ready (from the same env the image reads)."""

    port: int
    readiness: Callable[[dict[str, str]], dict[str, Any]] = _tcp


# Keyed by the image's base name (`docker.io/library/postgres:16-alpine` -> postgres).
KNOWN_IMAGES: dict[str, KnownImage] = {
    "postgres": KnownImage(5432, _sql),
    "postgis": KnownImage(5432, _sql),
    "rabbitmq": KnownImage(5672, _amqp),
    "redis": KnownImage(6379),
    "valkey": KnownImage(6379),
    "mysql": KnownImage(3306),
    "mariadb": KnownImage(3306),
    "mongo": KnownImage(27017),
    "memcached": KnownImage(11211),
    "nats": KnownImage(4222),
    "elasticsearch": KnownImage(9200),
    "opensearch": KnownImage(9200),
    "kafka": KnownImage(9092),
    "zookeeper": KnownImage(2181),
    "minio": KnownImage(9000),
    "nginx": KnownImage(80),
    "httpd": KnownImage(80),
    "mailhog": KnownImage(1025),
}

# Env var suffixes that split an address in two (`RABBITMQ_HOST=queue`, `RABBITMQ_PORT=5672`):
# the host var's name with its suffix replaced by the port suffix names its port.
HOST_PORT_SUFFIXES: tuple[tuple[str, str], ...] = (("_HOST", "_PORT"), ("_HOSTNAME", "_PORT"),
                                                    ("_SERVER", "_PORT"), ("HOST", "PORT"))

# `scheme://[user[:pass]@]host[:port]` and a bare `host:port` at the start of a value or after a
# separator (lists like `a:1,b:2`); a host alone counts only as a URL's host or a whole value.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s]*@)?(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?")
_BARE = re.compile(r"(?:^|(?<=[\s,;]))(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<port>\d{1,5})(?![\w.])")
OWN_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0")  # a healthcheck's URL of the service itself
_HTTP_URL = re.compile(r"http://(?P<host>[^/:\s'\"]+)(?::(?P<port>\d+))?(?P<path>/[^\s'\"|;&]*)?")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


# --- Pure readings of compose values --------------------------------------------------------------

def image_base(reference: str) -> str:
    """`registry:5000/library/postgres:16@sha256:..` -> `postgres`: the key of KNOWN_IMAGES."""
    last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def topology_name(name: str) -> str:
    """A compose service name as a topology name ([a-z][a-z0-9_]*): `My-API.v2` -> `my_api_v2`."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", name.lower())
    return cleaned if cleaned[:1].isalpha() else f"s_{cleaned}"


def env_mapping(environment: Any) -> dict[str, str]:
    """`environment:` as a mapping (compose takes a list of `K=V` or a mapping); a bare `K`
    (taken from the caller's shell) has no value in the file and is left out."""
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return {str(k): _scalar(v) for k, v in environment.items() if v is not None}
    if isinstance(environment, list):
        pairs = [str(item).partition("=") for item in environment]
        return {k: v for k, sep, v in pairs if sep}
    raise HarnessError(f"expected a list of K=V or a mapping, got {type(environment).__name__}: {environment!r}")


def _scalar(value: Any) -> str:
    """YAML's booleans as compose passes them (`true`), everything else as written."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def names_of(value: Any) -> list[str]:
    """`depends_on:` / `links:` as service names (list, or mapping with conditions; `svc:alias`)."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, dict)) else [value]
    return [str(item).split(":", 1)[0] for item in items]


@dataclass(frozen=True)
class PortSpec:
    """One container-side port of `ports:` or `expose:`, and whether it is published to the host."""

    port: int
    protocol: str = "tcp"
    published: bool = False


def _port_range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if last < first or last - first > 100:
        raise HarnessError(f"port range {text!r} is not one chaos adopt can read (at most 100 ports)")
    return list(range(first, last + 1))


def port_specs(entry: Any, published: bool) -> list[PortSpec]:
    """The container side of one `ports:` (published) or `expose:` entry, in every compose form:
    `8000`, `"8080:8000"`, `"127.0.0.1:8080:8000/tcp"`, `"9000-9001:9000-9001"`, `{target: 8000}`."""
    if isinstance(entry, dict):
        if not str(entry.get("target", "")).isdigit():
            raise HarnessError(f"port {entry!r} has no container port (`target:`)")
        return [PortSpec(int(entry["target"]), str(entry.get("protocol", "tcp")), published)]
    text, _, protocol = str(entry).partition("/")
    container = text.rsplit(":", 1)[-1]
    try:
        return [PortSpec(port, protocol or "tcp", published) for port in _port_range(container)]
    except ValueError:
        raise HarnessError(f"port {entry!r} is not a compose port") from None


def command_list(command: Any) -> list[str]:
    """`command:` as a list (a string is split the way compose splits it, shell-like)."""
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def own_http_check(healthcheck: Any) -> tuple[int, str] | None:
    """(port, path) of the http URL a healthcheck fetches on the service itself, if it fetches
    one (`curl -f http://localhost:8000/health`): evidence of the port it serves, and its
    readiness and health URL."""
    if not isinstance(healthcheck, dict) or healthcheck.get("disable"):
        return None
    test = healthcheck.get("test")
    text = " ".join(map(str, test)) if isinstance(test, list) else str(test or "")
    for found in _HTTP_URL.finditer(text):
        if found["host"] in OWN_HOSTS:
            return int(found["port"] or 80), found["path"] or "/"
    return None


@dataclass(frozen=True)
class Mention:
    """A value's reference to another service: the span of `host[:port]` within the value."""

    service: str
    port: int | None
    start: int
    end: int


def mentions(value: str, hosts: dict[str, str]) -> list[Mention]:
    """Where a value names one of `hosts` (host name -> service): a URL's host, a bare
    `host:port`, or the whole value being a host. Other words are never taken for hosts."""
    found: dict[int, Mention] = {}
    for match in (*_URL.finditer(value), *_BARE.finditer(value)):
        host = match["host"]
        if host in hosts and match.start("host") not in found:
            port = int(match["port"]) if match["port"] else None
            end = match.end("port") if match["port"] else match.end("host")
            found[match.start("host")] = Mention(hosts[host], port, match.start("host"), end)
    if not found and value in hosts:
        found[0] = Mention(hosts[value], None, 0, len(value))
    return [found[start] for start in sorted(found)]


def rewritten(value: str, spans: Iterable[Mention], placeholder: str = "{host}:{port}") -> str:
    """The value as an env template: each named `host:port` replaced by `{host}:{port}` (a host
    var of a split address by `{host}` alone)."""
    out, at = [], 0
    for mention in sorted(spans, key=lambda m: m.start):
        out += [value[at:mention.start], placeholder]
        at = mention.end
    return "".join(out) + value[at:]


def port_var(var: str, env: dict[str, str]) -> str | None:
    """The env var holding the port that goes with host var `var` (`DB_HOST` -> `DB_PORT`), if set
    to a number."""
    for host_suffix, port_suffix in HOST_PORT_SUFFIXES:
        if var.endswith(host_suffix):
            partner = var[: -len(host_suffix)] + port_suffix
            if env.get(partner, "").isdigit():
                return partner
    return None


# --- The adoption -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Question:
    """Something `chaos adopt` could not decide, about one service."""

    service: str
    text: str

    def __str__(self) -> str:
        return f"{self.service}: {self.text}"


@dataclass(frozen=True)
class Edge:
    """One adopted edge: `client` is handed `service`'s proxy through these env templates."""

    client: str
    service: str
    env: dict[str, str]


def _asker(questions: list[Question], service: str) -> Callable[[str], None]:
    """How a decision about `service` records what it could not decide."""
    return lambda text: questions.append(Question(service, text))


@dataclass
class _Seen:
    """One compose service as read, before anything is decided."""

    name: str  # the topology name
    original: str  # the compose name
    body: dict[str, Any]
    env: dict[str, str]
    ports: list[PortSpec]
    declared: list[str]  # depends_on / links, as topology names


@dataclass
class Adoption:
    """What `chaos adopt` found and decided: the topology's services, its edges, entry, and the
    questions left for the user (some services left out, marked in the output)."""

    name: str
    services: dict[str, dict[str, Any]]
    left_out: dict[str, dict[str, Any]]
    edges: list[Edge]
    entry: list[str]
    questions: list[Question]
    renamed: dict[str, str] = field(default_factory=dict)  # compose name -> topology name

    def topology(self) -> dict[str, Any]:
        """The topology document (what `chaos.yaml` holds, comments aside)."""
        document: dict[str, Any] = {"name": self.name}
        if self.entry:
            document["entry"] = list(self.entry)
        document["services"] = self.services
        return document


def _read_services(compose: dict[str, Any]) -> list[_Seen]:
    services = compose.get("services")
    if not isinstance(services, dict) or not services:
        raise HarnessError("the compose file has no `services:` mapping: is it a docker-compose file?")
    names = {original: topology_name(str(original)) for original in services}
    clashes = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if clashes:
        raise HarnessError(f"compose services {', '.join(k for k, v in names.items() if v in clashes)} "
                           f"all become topology name(s) {', '.join(clashes)}: rename one")
    seen = []
    for original, body in services.items():
        if not isinstance(body, dict):
            raise HarnessError(f"service {original!r} is not a mapping")
        ports = [spec for entry in body.get("ports") or [] for spec in port_specs(entry, published=True)]
        ports += [spec for entry in body.get("expose") or [] for spec in port_specs(entry, published=False)]
        declared = [
            names.get(n, topology_name(n)) for n in names_of(body.get("depends_on")) + names_of(body.get("links"))
        ]
        seen.append(_Seen(names[original], str(original), body, env_mapping(body.get("environment")), ports, declared))
    return seen


def _hosts(seen: list[_Seen]) -> dict[str, str]:
    """Every name a client can dial a service by on the compose network -> the service."""
    hosts: dict[str, str] = {}
    for service in seen:
        networks = service.body.get("networks")
        attached = networks.values() if isinstance(networks, dict) else ()  # a list names networks only
        aliases = [alias for network in attached for alias in (network or {}).get("aliases") or []]
        names = [service.original, service.body.get("container_name"), *aliases]
        hosts.update({str(n): service.name for n in names if n})
    return hosts


def _is_toxiproxy(service: _Seen) -> bool:
    """A Toxiproxy of the user's own (by name or image): the harness brings its own."""
    return topology.TOXIPROXY in (service.name, image_base(str(service.body.get("image") or "")))


def _known(service: _Seen) -> KnownImage | None:
    image = service.body.get("image")
    return KNOWN_IMAGES.get(image_base(str(image))) if image else None


def _decide_port(service: _Seen, named: set[int], ask: Callable[[str], None]) -> int | None:
    """The one port its proxy fronts: a known image's own port when the file or a client shows
    it or the file shows none (rabbitmq publishing only 15672 still serves 5672); else the
    file's one port, or among several the one clients name; else the one its own http
    healthcheck fetches; else the one clients' env names."""
    tcp = list(dict.fromkeys(p.port for p in service.ports if p.protocol == "tcp"))
    for spec in service.ports:
        if spec.protocol != "tcp":
            ask(f"serves {spec.protocol} port {spec.port}: Toxiproxy proxies TCP only, so it is left direct")
    known = _known(service)
    if known and (not tcp or known.port in tcp or known.port in named):
        return known.port
    if len(tcp) == 1:
        return tcp[0]
    if tcp:
        used = [p for p in tcp if p in named]
        if len(used) == 1:
            return used[0]
        ask(f"serves ports {', '.join(map(str, tcp))}: which one do its clients use? took {tcp[0]}")
        return tcp[0]
    check = own_http_check(service.body.get("healthcheck"))
    if check is not None and (not named or named == {check[0]}):
        return check[0]
    if len(named) == 1:
        return next(iter(named))
    if named:
        ask(f"clients name ports {', '.join(map(str, sorted(named)))} and the file shows none: which one "
            f"does it serve? left out")
    else:
        ask("no port it can see (no ports/expose, not a known image, no client names one): "
            "add `port:` and its readiness; left out")
    return None


def _image(service: _Seen, compose_dir: Path, out_dir: Path, ask: Callable[[str], None]) -> dict[str, Any]:
    """`image:` as the user wrote it; a `build:` as its context relative to the output file."""
    build = service.body.get("build")
    if build is None:
        image = service.body.get("image")
        if not image:
            raise HarnessError(f"service {service.original!r} has neither `image:` nor `build:`")
        return {"image": str(image)}
    spec = {"context": build} if isinstance(build, str) else dict(build)
    context = str(spec.get("context", "."))
    if "://" in context or context.startswith("git@"):
        ask(f"builds from {context}: only a local build context can be adopted; left as written")
        return {"build": {"context": context}}
    relative = os.path.relpath(os.path.normpath(compose_dir / context), os.path.normpath(out_dir))
    built: dict[str, Any] = {"context": relative if relative.startswith("..") or relative == "." else f"./{relative}"}
    if spec.get("dockerfile") not in (None, "Dockerfile"):
        built["dockerfile"] = str(spec["dockerfile"])  # relative to the context, in compose as in the topology
    args = env_mapping(spec.get("args"))  # compose takes the same two forms as for `environment:`
    if "BASE" in args:
        base = base_image(args["BASE"])
        if base is None:
            ask(f"builds FROM BASE={args['BASE']}, not one of the harness's images ({', '.join(IMAGES)}): "
                "name one as its `base:`, or give the Dockerfile's ARG BASE a default")
        else:
            built["base"] = base
    rest = sorted(set(args) - {"BASE"})
    if rest:
        ask(f"build args {', '.join(rest)} are not carried over (the topology passes BASE only)")
    return {"build": built}


def base_image(reference: str) -> str | None:
    """A build's BASE as the topology names it, the key of one of the harness's images
    (`chaos-harness/shop:latest` -> `shop`; the harness then picks its local build or the pinned
    official one); None when the reference is not one of them."""
    for key, spec in IMAGES.items():
        if reference == spec.official or re.fullmatch(rf"chaos-harness/{re.escape(key)}(:[\w.-]+)?", reference):
            return key
    return None


def adopt(compose: dict[str, Any], compose_dir: Path, out_dir: Path, default_name: str = "system") -> Adoption:
    """Reads a compose document into an Adoption: pure (paths are only joined, never read)."""
    seen = _read_services(compose)
    by_name = {s.name: s for s in seen}
    hosts = _hosts(seen)
    questions: list[Question] = []

    # Which ports clients' env names per service: the evidence for a service that shows none.
    named: dict[str, set[int]] = {s.name: set() for s in seen}
    for client in seen:
        for value in client.env.values():
            for mention in mentions(value, hosts):
                if mention.port is not None and mention.service != client.name:
                    named[mention.service].add(mention.port)

    ports: dict[str, int] = {}
    for service in seen:
        if _is_toxiproxy(service):
            questions.append(Question(service.name, "the harness runs its own Toxiproxy in front of every edge: "
                                                    "this one is left out"))
            continue
        port = _decide_port(service, named[service.name], _asker(questions, service.name))
        if port is not None:
            ports[service.name] = port

    edges: list[Edge] = []
    for client in seen:
        edges += _client_edges(client, hosts, ports, by_name, questions)
    adopted = {(e.client, e.service) for e in edges}
    for client in seen:
        for target in dict.fromkeys(client.declared):
            if target not in by_name:
                questions.append(Question(client.name, f"depends on {target}, which the file does not define"))
            elif (client.name, target) not in adopted and not _named_in_env(client, target, hosts):
                questions.append(Question(client.name, f"depends on {target} but no env value names its address: "
                                                       f"how is it told where {target} is? the edge is left direct"))

    used = {e.service for e in edges} | {t for s in seen for t in s.declared}
    entry = [s.name for s in seen if s.name in ports and s.name not in used and any(p.published for p in s.ports)]
    services: dict[str, dict[str, Any]] = {}
    left_out: dict[str, dict[str, Any]] = {}
    for service in seen:
        body = _service_body(service, ports.get(service.name), [e for e in edges if e.client == service.name],
                             compose_dir, out_dir, _asker(questions, service.name))
        (services if service.name in ports else left_out)[service.name] = body
    order = {s.name: i for i, s in enumerate(seen)}
    questions.sort(key=lambda q: order.get(q.service, len(order)))  # stable: per service, found order
    name = topology_name(str(compose.get("name") or default_name))
    renamed = {s.original: s.name for s in seen if s.original != s.name}
    return Adoption(name, services, left_out, edges, entry, questions, renamed)


def _named_in_env(client: _Seen, target: str, hosts: dict[str, str]) -> bool:
    return any(m.service == target for v in client.env.values() for m in mentions(v, hosts))


def _client_edges(client: _Seen, hosts: dict[str, str], ports: dict[str, int], by_name: dict[str, _Seen],
                  questions: list[Question]) -> list[Edge]:
    """The edges one client's env names, each var rewritten to a template of its proxy address;
    the vars it cannot rewrite are questions and stay as they are."""
    templates: dict[str, dict[str, str]] = {}
    ask = _asker(questions, client.name)
    for var, value in client.env.items():
        found = [m for m in mentions(value, hosts) if m.service != client.name]
        targets = list(dict.fromkeys(m.service for m in found))
        if not found:
            continue
        if len(targets) > 1:
            ask(f"{var} names {', '.join(targets)}: one variable, several services; left as is")
            continue
        target = targets[0]
        if target not in ports:
            ask(f"{var} names {target}, which has no port of its own here; left as is")
            continue
        port = ports[target]
        partner = port_var(var, client.env) if all(m.port is None for m in found) else None
        if partner is not None:
            if int(client.env[partner]) != port:
                ask(f"{var}/{partner} name {target}:{client.env[partner]}, but {target} serves {port}; left as is")
                continue
            templates.setdefault(target, {}).update({var: rewritten(value, found, "{host}"), partner: "{port}"})
            continue
        if any(m.port is None for m in found):
            ask(f"{var}={value} names {target} without a port: which port does {client.name} dial? left as is")
            continue
        wrong = sorted({m.port for m in found if m.port is not None and m.port != port})
        if wrong:
            serves = {p.port for p in by_name[target].ports}
            why = (f"its proxy fronts {port} only" if set(wrong) <= serves
                   else f"{target} serves {port}")
            ask(f"{var} names {target}:{','.join(map(str, wrong))}, but {why}; left as is")
            continue
        templates.setdefault(target, {})[var] = rewritten(value, found)
    return [Edge(client.name, target, env) for target, env in templates.items()]


def _service_body(service: _Seen, port: int | None, edges: list[Edge], compose_dir: Path, out_dir: Path,
                  ask: Callable[[str], None]) -> dict[str, Any]:
    """One topology service, its keys in the order the schema documents them."""
    body = _image(service, compose_dir, out_dir, ask)
    if port is not None:
        body["port"] = port
    extra = [p.port for p in service.ports if p.protocol == "tcp" and p.port != port]
    if extra:
        body["ports"] = list(dict.fromkeys(extra))
    if service.body.get("command") is not None:
        body["command"] = command_list(service.body["command"])
    if service.body.get("hostname"):
        body["hostname"] = str(service.body["hostname"])
    check = own_http_check(service.body.get("healthcheck"))
    path = check[1] if check is not None and check[0] == port else None
    if check is not None and path is None and port is not None:
        ask(f"its healthcheck fetches port {check[0]}, not {port} (the port its proxy fronts): readiness is tcp")
    known = _known(service)
    body["readiness"] = ({"http": {"path": path}} if path else
                         known.readiness(service.env) if known else {"tcp": {}})
    if path:
        body["health"] = {"path": path}
        ask(f"health: a 200 from {path} counts as 100; if it answers a 0-100 score in its JSON, "
            f"add `score: FIELD` to its health")
    if service.body.get("env_file"):
        ask("its env_file is not read: variables there are neither kept nor looked at for edges")
    if service.body.get("volumes"):
        ask("its volumes are not carried over (a run keeps data in the container); "
            "add `volumes: [{mount: ..., size: ...}]` for a size-limited one")
    rewritten_vars = {var for edge in edges for var in edge.env}
    env = {k: v for k, v in service.env.items() if k not in rewritten_vars}
    for var in [k for k, v in env.items() if topology._PLACEHOLDER.search(v)]:  # the loader's own reading
        ask(f"{var}={env.pop(var)} holds what a topology reads as a placeholder: left out, set it by hand")
    if env:
        body["env"] = env
    if edges:
        body["uses"] = {edge.service: dict(edge.env) for edge in edges}
    return body


# --- Output ------------------------------------------------------------------------------------------

def _dump(document: Any) -> str:
    """Block style, with leaf mappings and lists in flow style (`command: [python3, -m, web]`)."""
    text: str = yaml.safe_dump(document, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)
    return text


def topology_yaml(adoption: Adoption, source: str) -> str:
    """chaos.yaml's text: the topology, each service's questions as `# ?` comments above it,
    the services left out written commented out (answer the question, then uncomment)."""
    asked: dict[str, list[str]] = {}
    for question in adoption.questions:
        asked.setdefault(question.service, []).append(f"  # ? {question.text}\n")
    lines = []
    for line in _dump(adoption.topology()).splitlines(keepends=True):
        key = line[2:-2] if line.startswith("  ") and not line.startswith("   ") and line.endswith(":\n") else None
        lines += asked.get(key, []) if key in adoption.services else []  # a service's key, at indent 2
        lines.append(line)
    for name, body in adoption.left_out.items():
        lines += asked.get(name, [])
        lines += [f"  # {line}\n" for line in _dump({name: body}).splitlines()]
    return HEADER.format(source=source) + "".join(lines)


def summary(adoption: Adoption, source: str) -> list[str]:
    """What `chaos adopt` prints: services, edges, entry, then the questions, one a line."""
    lines = [f"read {source}: {len(adoption.services) + len(adoption.left_out)} services, "
             f"{len(adoption.edges)} edges, {len(adoption.questions)} question(s)", "services:"]
    width = max(map(len, [*adoption.services, *adoption.left_out]))
    for name, body in {**adoption.services, **adoption.left_out}.items():
        made = body.get("image") or f"build {body['build']['context']}"
        kind = next(iter(body["readiness"]))
        ready = kind + (f" {body['readiness'][kind]['path']}" if kind == "http" else "")
        where = f"port {body['port']}" if "port" in body else "LEFT OUT"
        lines.append(f"  {name:<{width}}  {made}, {where}, readiness {ready}")
    lines.append("edges:" if adoption.edges else "edges: none found")
    lines += [f"  {e.client} -> {e.service} via env {', '.join(e.env)}"
              + (f" (not written: {e.client} is left out)" if e.client in adoption.left_out else "")
              for e in adoption.edges]
    lines.append(f"entry: {', '.join(adoption.entry) or 'none (no service publishes a port that nobody uses)'}")
    lines += [f"renamed: {old} -> {new}" for old, new in adoption.renamed.items()]
    if adoption.questions:
        lines.append("questions:")
        lines += [f"  ? {q}" for q in adoption.questions]
    return lines


def read_compose(path: Path) -> dict[str, Any]:
    """The compose document, or one line saying why it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"no compose file {path}: give the path of your docker-compose.yml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read {path}: {type(exc).__name__}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise HarnessError(
            f"{path} is not YAML{where}: {getattr(exc, 'problem', None) or type(exc).__name__}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise HarnessError(f"{path} has no `services:` mapping: is it a docker-compose file?")
    return document


@dataclass(frozen=True)
class Written:
    """What `run` did: the adoption, the topology as the harness loads it, and the files written."""

    adoption: Adoption
    topology: Topology
    files: tuple[Path, ...]


def topology_output(compose_path: Path, output: Path | None) -> Path:
    """Where chaos.yaml goes: -o, else beside the compose file."""
    return output if output is not None else compose_path.parent / DEFAULT_OUTPUT


def refuse_overwrite(compose_path: Path, targets: Iterable[Path], force: bool) -> None:
    """Nothing is overwritten without --force, and the user's compose file never is."""
    for target in targets:
        if target.resolve() == compose_path.resolve():
            raise HarnessError(f"{target} is the compose file being adopted: give another -o")
        if target.exists() and not force:
            raise HarnessError(f"{target} exists: pass --force to overwrite it, or -o another file")
        if not target.parent.is_dir():
            raise HarnessError(f"no directory {target.parent} for {target.name}: create it or give another -o")


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _load(partial: Path, final: Path, compose_path: Path) -> Topology:
    """The written topology through the harness's loader; its refusal is a bug of this module."""
    try:
        return topology.load(partial)
    except HarnessError as exc:
        said = str(exc).replace(str(partial.resolve()), str(final))
        raise HarnessError(f"the topology adopted from {compose_path} does not load ({said}): a bug of chaos adopt, "
                           "please report it with the compose file") from None


def run(compose_path: Path, output: Path | None = None, force: bool = False) -> Written:
    """`chaos adopt`: reads, decides, and writes the topology and the compose stack of it
    (docker-compose.chaos.yml and its Toxiproxy file, beside the topology). The topology is
    loaded by the harness's own loader before anything is in place, so what is written is what
    `chaos up --topology` runs; on bad input or a refused overwrite nothing is left behind."""
    document = read_compose(compose_path)
    topology_path = topology_output(compose_path, output)
    try:
        adoption = adopt(document, compose_path.parent.absolute(), topology_path.parent.absolute(),
                         default_name=compose_path.absolute().parent.name)
    except HarnessError as exc:
        raise HarnessError(f"{compose_path}: {exc}") from None
    refuse_overwrite(compose_path, [topology_path], force)
    made = [_partial(topology_path)]  # the partial files so far: removed if anything fails
    try:
        made[0].write_text(topology_yaml(adoption, compose_path.name), encoding="utf-8")
        loaded = dataclasses.replace(_load(made[0], topology_path, compose_path), path=topology_path.resolve())
        generated = compose.expected(loaded)
        refuse_overwrite(compose_path, generated, force)
        for path, text in generated.items():
            made.append(_partial(path))
            made[-1].write_text(text, encoding="utf-8")
    except BaseException:
        for path in made:
            path.unlink(missing_ok=True)
        raise
    for path in (topology_path, *generated):
        _partial(path).replace(path)  # each file whole: the topology first, the files made from it after
    return Written(adoption, loaded, (topology_path, *generated))
