"""The system under test as data: a topology file, loaded and validated.

A topology file (``chaos.yaml``) names every service, what it needs to be ready, who uses whom and
what each client is told of a dependency's address. Toxiproxy is the harness's own: it is added to
every topology, and one proxy is derived for every used service (and for each ``entry:``, the
services the harness itself drives); nothing else names a proxy. Services never learn a real
address of a dependency: they are handed the proxy's, which is what lets every edge be faulted.

Which file: ``--topology FILE`` (the CLI and the pytest plugin put it in ``CHAOS_TOPOLOGY`` so child
processes and attaching commands read the same), else ``chaos.yaml`` in the current directory, else
the bundled example, the shop (``services/chaos.yaml``). A file that does not validate is one line
naming the file, the line and the field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import HarnessError

Readiness = Literal["sql", "amqp", "http", "tcp"]
READINESS_KINDS: tuple[Readiness, ...] = ("sql", "amqp", "http", "tcp")

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "services" / "chaos.yaml"
FILE_NAME = "chaos.yaml"
TOPOLOGY_ENV = "CHAOS_TOPOLOGY"

TOXIPROXY = "toxiproxy"
TOXIPROXY_HOST = "toxiproxy"
TOXIPROXY_API_PORT = 8474
FIRST_LISTEN_PORT = 20000
# The harness's control protocol, for services that cooperate with it: every run has a secret,
# handed to the services that ask for it in their env (`{run.control_secret}`), and their control
# endpoints refuse a request without it in this header.
CONTROL_HEADER = "X-Chaos-Control"
CONTROL_SECRET_ENV = "CHAOS_CONTROL_SECRET"
# What a generated docker-compose file gives for the secret: the operator's CHAOS_CONTROL_SECRET,
# else a fixed default (the compose stack listens on the loopback only; set it on a shared host).
COMPOSE_SECRET = f"${{{CONTROL_SECRET_ENV}:-chaos-compose-control}}"
# The placeholders a topology's env values may hold. `{host}`/`{port}` only in an address.
RUN_FIELDS = ("run.sut_mode", "run.disabled", "run.control_secret")
_PLACEHOLDER = re.compile(r"\{(host|port|run\.[a-z_]+)\}")
NAME = r"^[a-z][a-z0-9_]*$"


def control_headers(secret: str) -> dict[str, str]:
    """The header a cooperating service's control endpoints ask for, carrying the run's secret."""
    return {CONTROL_HEADER: secret}


# ---------------------------------------------------------------- the file's schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _stringified(value: Any) -> Any:
    """YAML gives numbers and booleans where an environment holds text: `SMTP_PORT: 2525`."""
    if isinstance(value, dict):
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) if isinstance(v, (int, float, bool)) else v
                for k, v in value.items()}
    return value


class SqlSpec(_Strict):
    user: str
    password: str
    database: str


class AmqpSpec(_Strict):
    user: str = "guest"
    password: str = "guest"


class HttpSpec(_Strict):
    path: str = "/health"


class TcpSpec(_Strict):
    pass


class ReadinessSpec(_Strict):
    """Exactly one protocol, with what the harness needs to speak it."""

    sql: SqlSpec | None = None
    amqp: AmqpSpec | None = None
    http: HttpSpec | None = None
    tcp: TcpSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> "ReadinessSpec":
        chosen = [name for name in ("sql", "amqp", "http", "tcp") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of sql, amqp, http, tcp")
        return self


class BuildSpec(_Strict):
    context: str
    dockerfile: str = "Dockerfile"
    base: str | None = None  # a base image key: passed as the build argument BASE


class HealthSpec(_Strict):
    path: str = "/health"
    score: str | None = None  # the 0-100 field of its JSON; none: 200 counts 100, else 0


class VolumeSpec(_Strict):
    mount: str
    size: str = "32m"


class ServiceSpec(_Strict):
    image: str | None = None
    build: BuildSpec | None = None
    port: int = Field(ge=1, le=65535)
    readiness: ReadinessSpec
    command: list[str] = []
    env: dict[str, str] = {}
    address: dict[str, str] = {}
    uses: list[str] | dict[str, dict[str, str]] = []
    proxy: str | None = Field(default=None, pattern=NAME)
    listen_port: int | None = Field(default=None, ge=1024, le=65535)
    hostname: str | None = None
    volumes: list[VolumeSpec] = []
    ports: list[int] = []
    health: HealthSpec | None = None
    capabilities: list[str] = []

    _env_text = field_validator("env", "address", mode="before")(_stringified)

    @field_validator("uses", mode="before")
    @classmethod
    def _uses_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _stringified(v or {}) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_image(self) -> "ServiceSpec":
        if (self.image is None) == (self.build is None):
            raise ValueError("give exactly one of image, build")
        return self


class SystemHealthSpec(_Strict):
    """The system reports its own health through its entry: this path, answered by the first
    entry service with the system's score (as the shop's gateway does)."""

    path: str = Field(pattern=r"^/")


class TopologySpec(_Strict):
    name: str = Field(pattern=NAME)
    entry: list[str] = []
    health: SystemHealthSpec | None = None
    # The system's game-day load (harness.gameday_load.LoadSystem), as "package.module:NAME":
    # the workload `chaos load start` runs and the checker the game day's report judges it by.
    load: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    services: dict[str, ServiceSpec]


# ---------------------------------------------------------------- what the harness runs


@dataclass(frozen=True)
class Build:
    context: Path
    dockerfile: str
    base: str | None


@dataclass(frozen=True)
class Health:
    path: str
    score: str | None


@dataclass(frozen=True)
class Service:
    """One container of the stack."""

    name: str
    image: str  # a base image key of harness.images, or an image reference (with build: the tag's name)
    port: int  # the port it serves inside the network
    readiness: Readiness
    readiness_params: dict[str, str] = field(default_factory=dict)  # user, password, database, path
    uses: tuple[str, ...] = ()  # proxy names whose addresses it is given
    edge_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per used proxy, instead of its address
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None  # the machine name the service reports
    volumes: tuple[tuple[str, str], ...] = ()  # (mount point, size) of size-limited data volumes
    extra_ports: tuple[int, ...] = ()  # further ports published to the harness
    health: Health | None = None
    capabilities: frozenset[str] = frozenset()
    build: Build | None = None

    @property
    def host(self) -> str:
        """Its DNS name on the run's network (hyphens: valid in every resolver)."""
        return self.name.replace("_", "-")

    @property
    def takes_control_secret(self) -> bool:
        """Whether it is handed the run's control secret (and so answers the control protocol)."""
        return any("{run.control_secret}" in value for value in self.env.values())


@dataclass(frozen=True)
class Proxy:
    """A named Toxiproxy proxy in front of one service."""

    name: str
    upstream: str  # service name
    listen_port: int  # port inside the Toxiproxy container
    env: dict[str, str] = field(default_factory=dict)  # what clients are told; {host} {port}
    # At its own port on the host (the harness's entry, a fixed port in the compose file); every
    # listener is also reachable from the host at a port the engine picks, for the faults' wire checks.
    published: bool = False


TOXIPROXY_SERVICE = Service(TOXIPROXY, TOXIPROXY, TOXIPROXY_API_PORT, "http", {"path": "/version"})


@dataclass(frozen=True)
class Topology:
    """A loaded topology: its services (Toxiproxy included) and the proxies derived from them."""

    name: str
    path: Path
    services: dict[str, Service]
    proxies: dict[str, Proxy]
    # The path at which the entry reports the whole system's health; None: the harness samples
    # each service's `health:` itself and the weakest one is the system's (harness/probes.py).
    health_path: str | None = None
    load: str | None = None  # "package.module:NAME" of the system's game-day load, if it declares one

    @property
    def entry(self) -> tuple[str, ...]:
        """The proxies the harness's own clients go through."""
        return tuple(p.name for p in self.proxies.values() if p.published)

    def upstream_address(self, proxy: Proxy) -> str:
        """Where Toxiproxy forwards a proxy's traffic, on the run's network."""
        service = self.services[proxy.upstream]
        return f"{service.host}:{service.port}"

    def proxy_of(self, service: str) -> Proxy | None:
        """The proxy in front of a service, if anyone uses it."""
        return next((p for p in self.proxies.values() if p.upstream == service), None)

    def with_capability(self, capability: str) -> tuple[str, ...]:
        """The services that declare a capability (the faults that need a cooperating service)."""
        return tuple(name for name, s in self.services.items() if capability in s.capabilities)

    def service_env(self, service: Service, sut_mode: str, disabled: tuple[str, ...] = (),
                    secret: str = "") -> dict[str, str]:
        """The environment a service starts with: its own (the run's values filled in), plus the
        proxy address of each dependency it uses."""
        run = {"run.sut_mode": sut_mode, "run.disabled": ",".join(disabled), "run.control_secret": secret}
        env = {key: fill(value, run) for key, value in service.env.items()}
        for proxy_name in service.uses:
            proxy = self.proxies[proxy_name]
            templates = service.edge_env.get(proxy_name, proxy.env)
            address = {"host": TOXIPROXY_HOST, "port": str(proxy.listen_port)}
            env.update({key: fill(value, address) for key, value in templates.items()})
        return env

    def start_order(self) -> list[list[str]]:
        """Start waves: Toxiproxy first (its proxies must exist before anyone dials them), then all
        the rest at once; services tolerate dependencies that come up after them."""
        return [[TOXIPROXY], [name for name in self.services if name != TOXIPROXY]]


def fill(template: str, values: dict[str, str]) -> str:
    """A template with its known placeholders filled; other braces are left as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


# ---------------------------------------------------------------- loading


def load(path: str | Path) -> Topology:
    """Reads and validates a topology file; HarnessError naming the file, line and field."""
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"topology {path}: cannot be read ({exc.strerror or exc}): "
                           "pass --topology with an existing file") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HarnessError(f"{path}{where}: not YAML ({problem})") from None
    lines: dict[tuple[str, ...], int] = {}
    if root is not None:
        _node_lines(root, (), lines)
    if not isinstance(data, dict):
        raise HarnessError(f"{path}:1: a topology is a mapping with name and services")
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}  # extension fields (anchors)
    try:
        spec = TopologySpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(part) for part in error["loc"])
        raise HarnessError(f"{path}:{_line(lines, loc)}: {'.'.join(loc) or 'topology'}: {error['msg']}") from None
    try:
        return _built(spec, path)
    except _FieldError as exc:
        raise HarnessError(f"{path}:{_line(lines, exc.where)}: {'.'.join(exc.where)}: {exc}") from None


class _FieldError(ValueError):
    def __init__(self, where: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.where = where


def _node_lines(node: yaml.Node, where: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    """Each field's line in the file (1-based), for errors that name it."""
    out.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                out[(*where, key.value)] = key.start_mark.line + 1
                _node_lines(value, (*where, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _node_lines(item, (*where, str(index)), out)


def _line(lines: dict[tuple[str, ...], int], where: tuple[str, ...]) -> int:
    """The line of the deepest part of `where` that the file has (a missing field: its parent's)."""
    for cut in range(len(where), -1, -1):
        if where[:cut] in lines:
            return lines[where[:cut]]
    return 1


def _built(spec: TopologySpec, path: Path) -> Topology:
    """The runnable topology: names checked, proxies derived, templates checked."""
    if TOXIPROXY in spec.services:
        raise _FieldError(("services", TOXIPROXY), "the harness adds Toxiproxy itself: rename this service")
    for name in spec.services:
        if not re.match(NAME, name):
            raise _FieldError(("services", name), "a service name is lower case letters, digits and _")
    for index, name in enumerate(spec.entry):
        if name not in spec.services:
            raise _FieldError(("entry", str(index)), f"unknown service {name!r}")
    used: dict[str, None] = {}  # services that get a proxy, in file order
    for name, service in spec.services.items():
        for index, other in enumerate(service.uses):
            where = ("services", name, "uses", other if isinstance(service.uses, dict) else str(index))
            if other not in spec.services:
                raise _FieldError(where, f"unknown service {other!r}")
            if other == name:
                raise _FieldError(where, "a service does not use itself")
    for name in spec.services:
        if name in spec.entry or any(name in s.uses for s in spec.services.values()):
            used[name] = None
    proxies = _proxies(spec, list(used))
    by_upstream = {p.upstream: p.name for p in proxies.values()}
    services = {TOXIPROXY: TOXIPROXY_SERVICE}
    for name, service in spec.services.items():
        _check_templates(("services", name, "env"), service.env, RUN_FIELDS)
        _check_templates(("services", name, "address"), service.address, ("host", "port"))
        edge_env = {}
        if isinstance(service.uses, dict):
            for other, templates in service.uses.items():
                _check_templates(("services", name, "uses", other), templates, ("host", "port"))
                edge_env[by_upstream[other]] = templates
        kind = next(k for k in READINESS_KINDS if getattr(service.readiness, k) is not None)
        params = getattr(service.readiness, kind).model_dump()
        build = None
        if service.build:
            build = Build((path.parent / service.build.context).resolve(), service.build.dockerfile, service.build.base)
        services[name] = Service(
            name=name, image=service.image or f"{spec.name}-{name}", port=service.port, readiness=kind,
            readiness_params=params, uses=tuple(by_upstream[o] for o in service.uses), edge_env=edge_env,
            command=tuple(service.command), env=dict(service.env), hostname=service.hostname,
            volumes=tuple((v.mount, v.size) for v in service.volumes), extra_ports=tuple(service.ports),
            health=Health(service.health.path, service.health.score) if service.health else None,
            capabilities=frozenset(service.capabilities), build=build)
    if spec.health is not None and not spec.entry:
        raise _FieldError(("health",), "the system reports its health through its entry: add `entry: [SERVICE]`")
    return Topology(spec.name, path, services, proxies, spec.health.path if spec.health else None, spec.load)


def _proxies(spec: TopologySpec, used: list[str]) -> dict[str, Proxy]:
    """One proxy per used service: its name (`proxy:`, else the service's), its port in Toxiproxy
    (`listen_port:`, else the next free one from FIRST_LISTEN_PORT), the address its clients are
    told, and whether the harness's entry goes through it."""
    taken = {s.listen_port for s in spec.services.values() if s.listen_port}
    proxies: dict[str, Proxy] = {}
    ports: dict[int, str] = {}
    next_port = FIRST_LISTEN_PORT
    for name in used:
        service = spec.services[name]
        proxy_name = service.proxy or name
        if proxy_name in proxies:
            raise _FieldError(("services", name, "proxy"), f"proxy name {proxy_name!r} is taken by another service")
        port = service.listen_port
        if port is None:
            while next_port in taken or next_port in ports:
                next_port += 1
            port = next_port
        elif port in ports:
            raise _FieldError(("services", name, "listen_port"), f"port {port} is taken by proxy {ports[port]}")
        ports[port] = proxy_name
        proxies[proxy_name] = Proxy(proxy_name, name, port, dict(service.address), published=name in spec.entry)
    return dict(sorted(proxies.items(), key=lambda item: item[1].listen_port))


def _check_templates(where: tuple[str, ...], env: dict[str, str], allowed: tuple[str, ...]) -> None:
    for key, value in env.items():
        for found in _PLACEHOLDER.findall(value):
            if found not in allowed:
                raise _FieldError((*where, key), f"unknown placeholder {{{found}}}: use "
                                  + ", ".join(f"{{{a}}}" for a in allowed))


# ---------------------------------------------------------------- the active topology


def chosen_path() -> Path:
    """The file this process tests: CHAOS_TOPOLOGY, else ./chaos.yaml, else the bundled shop."""
    named = os.environ.get(TOPOLOGY_ENV)
    if named:
        return Path(named).resolve()
    here = Path.cwd() / FILE_NAME
    return here.resolve() if here.is_file() else BUNDLED


def choose(path: str | Path | None) -> None:
    """Makes a file the active topology of this process and its children (--topology); it is
    read when first asked for (active())."""
    if path is not None:
        os.environ[TOPOLOGY_ENV] = str(Path(path).resolve())


def active() -> Topology:
    """The topology this process tests (loaded once per file)."""
    return load_cached(chosen_path())


def load_cached(path: str | Path) -> Topology:
    """A topology file, loaded once per process (files do not change under a run)."""
    return _loaded(Path(path).resolve())


@lru_cache(maxsize=8)
def _loaded(path: Path) -> Topology:
    return load(path)


def __getattr__(name: str) -> Any:
    """`topology.SERVICES` and `topology.PROXIES`: the active topology's tables."""
    if name == "SERVICES":
        return active().services
    if name == "PROXIES":
        return active().proxies
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
