"""The stack as data: services, the Toxiproxy proxies on every edge, and who uses which.

Everything else (stack start-up, readiness, the compose file, fault targets) is derived from
these two tables, so a new service or edge is one row here. Services never learn a real
address of a dependency: they are handed the proxy's, which is what lets every edge be faulted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Readiness = Literal["sql", "amqp", "http", "toxiproxy"]

TOXIPROXY_HOST = "toxiproxy"
TOXIPROXY_API_PORT = 8474
DB_USER = DB_PASSWORD = DB_NAME = "shop"
BROKER_USER = BROKER_PASSWORD = "chaos"
SMTP_PORT = 2525
# The run's control secret (services/shop/control.py): every shop service is given it in this
# variable, and the shop's control endpoints (token minting, key rotation, the vendor's and the
# sink's /_control, the protection switchboard) refuse a request without it in this header.
CONTROL_SECRET_ENV = "CHAOS_CONTROL_SECRET"
CONTROL_HEADER = "X-Chaos-Control"
# What docker-compose.chaos.yml gives the shop: the operator's CHAOS_CONTROL_SECRET, else a fixed
# default (the compose stack listens on the loopback only; set the variable on a shared host).
COMPOSE_SECRET = f"${{{CONTROL_SECRET_ENV}:-chaos-compose-control}}"


def control_headers(secret: str) -> dict[str, str]:
    """The header the shop's control endpoints ask for, carrying the run's secret."""
    return {CONTROL_HEADER: secret}
# The sinks are the harness's own observers, not edges of the shop: reached directly.
SINK_ENV = {"ALERT_URL": "http://alert-sink:8000/hooks/alerts", "SMTP_HOST": "alert-sink",
            "SMTP_PORT": str(SMTP_PORT)}
# A service whose wall clock the harness can shift (the `auth.clock_skew` fault): libfaketime,
# installed in the shop image, is preloaded and reads the offset from CLOCK_OFFSET_FILE ("+0",
# "-120") on every clock read, so writing the file shifts time.time() at once, with no restart.
# The monotonic clock is left real, or asyncio's timers would jump with the skew. Only for
# services that never call time.sleep(): under libfaketime 0.9.10 with the monotonic clock left
# real, clock_nanosleep fails with EINVAL (asyncio's waits and threading's are unaffected).
CLOCK_OFFSET_FILE = "/var/lib/chaos-clock/offset"
SKEWABLE_ENV = {"LD_PRELOAD": "/usr/local/lib/libfaketime.so.1", "FAKETIME_TIMESTAMP_FILE": CLOCK_OFFSET_FILE,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


@dataclass(frozen=True)
class Service:
    """One container of the stack."""

    name: str
    image: str  # a key of harness.images.IMAGES
    port: int  # the port it serves inside the network
    readiness: Readiness
    uses: tuple[str, ...] = ()  # proxy names whose addresses it is given
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    shop: bool = False  # runs the shop image and takes SUT_MODE
    hostname: str | None = None  # the machine name the service reports (node-A)
    volume: tuple[str, str] | None = None  # (mount point, size) of a size-limited data volume
    extra_ports: tuple[int, ...] = ()  # further ports published to the harness (SMTP of the sink)

    @property
    def host(self) -> str:
        """Its DNS name on the run's network (hyphens: valid in every resolver)."""
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class Proxy:
    """A named Toxiproxy proxy in front of one service."""

    name: str
    upstream: str  # service name
    listen_port: int  # port inside the Toxiproxy container
    env: dict[str, str] = field(default_factory=dict)  # what clients are told; {host} {port}
    # At its own port on the host (the client edge, a fixed port in the compose file); every
    # listener is also reachable from the host at a port the engine picks, for the fault probes.
    published: bool = False


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("postgres", "postgres", 5432, "sql",
                command=("-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off", "-c", "max_connections=200"),
                env={"POSTGRES_USER": DB_USER, "POSTGRES_PASSWORD": DB_PASSWORD,
                     "POSTGRES_DB": DB_NAME}),
        Service("rabbitmq", "rabbitmq", 5672, "amqp",
                env={"RABBITMQ_DEFAULT_USER": BROKER_USER, "RABBITMQ_DEFAULT_PASS": BROKER_PASSWORD}),
        Service("toxiproxy", "toxiproxy", TOXIPROXY_API_PORT, "toxiproxy"),
        Service("alert_sink", "shop", 8000, "http", shop=True, extra_ports=(SMTP_PORT,),
                command=("python3", "-m", "shop", "alert_sink")),
        Service("payment_gateway", "shop", 8000, "http", shop=True,
                command=("python3", "-m", "shop", "payment_gateway")),
        Service("auth_service", "shop", 8000, "http", shop=True, uses=("postgres",),
                command=("python3", "-m", "shop", "auth_service"), env=SKEWABLE_ENV),
        Service("inventory_service", "shop", 8000, "http", shop=True,
                uses=("postgres", "rabbitmq", "auth"),
                command=("python3", "-m", "shop", "inventory_service")),
        Service("api_gateway", "shop", 8000, "http", shop=True, hostname="node-A",
                volume=("/data", "32m"),
                uses=("postgres", "payment", "rabbitmq", "auth", "inventory"),
                command=("python3", "-m", "shop", "api_gateway")),
    )
}

PROXIES: dict[str, Proxy] = {
    p.name: p
    for p in (
        Proxy("edge_gateway", "api_gateway", 20000, published=True),
        Proxy("auth", "auth_service", 20001, {"AUTH_URL": "http://{host}:{port}"}),
        Proxy("inventory", "inventory_service", 20002, {"INVENTORY_URL": "http://{host}:{port}"}),
        Proxy("payment", "payment_gateway", 20003, {"PAYMENT_URL": "http://{host}:{port}"}),
        Proxy("postgres", "postgres", 20004,
              {"DATABASE_URL": f"postgresql://{DB_USER}:{DB_PASSWORD}@{{host}}:{{port}}/{DB_NAME}"}),
        Proxy("rabbitmq", "rabbitmq", 20005,
              {"RABBITMQ_HOST": "{host}", "RABBITMQ_PORT": "{port}",
               "RABBITMQ_USER": BROKER_USER, "RABBITMQ_PASS": BROKER_PASSWORD}),
    )
}


def upstream_address(proxy: Proxy) -> str:
    """Where Toxiproxy forwards a proxy's traffic, on the run's network."""
    service = SERVICES[proxy.upstream]
    return f"{service.host}:{service.port}"


def service_env(service: Service, sut_mode: str, disabled: tuple[str, ...] = (), secret: str = "") -> dict[str, str]:
    """The environment a service starts with: its own, plus the proxy address of each edge, and
    (shop services) the protections it starts without and the run's control secret (without
    one, the shop refuses every control call)."""
    env = {"SERVICE_NAME": service.name, **service.env}
    if service.shop:
        env["SUT_MODE"] = sut_mode
        env[CONTROL_SECRET_ENV] = secret
        if disabled:
            env["SUT_DISABLE"] = ",".join(disabled)
        env.update(SINK_ENV)
    if service.hostname:
        env["NODE_NAME"] = service.hostname
    if service.volume:
        env["DATA_DIR"] = service.volume[0]
    for proxy_name in service.uses:
        proxy = PROXIES[proxy_name]
        for key, template in proxy.env.items():
            env[key] = template.format(host=TOXIPROXY_HOST, port=proxy.listen_port)
    return env


def start_order() -> list[list[str]]:
    """Start waves: Toxiproxy first (its proxies must exist before anyone dials them), then all
    the rest at once; services tolerate dependencies that come up after them."""
    return [["toxiproxy"], [name for name in SERVICES if name != "toxiproxy"]]


def validate() -> None:
    """Fails loudly on a table that points at nothing (checked by a unit test)."""
    ports = [p.listen_port for p in PROXIES.values()]
    if len(ports) != len(set(ports)):
        raise ValueError("two proxies share a listen port")
    for proxy in PROXIES.values():
        if proxy.upstream not in SERVICES:
            raise ValueError(f"proxy {proxy.name} points at unknown service {proxy.upstream}")
    for service in SERVICES.values():
        for used in service.uses:
            if used not in PROXIES:
                raise ValueError(f"service {service.name} uses unknown proxy {used}")
