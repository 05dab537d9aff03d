"""The stack's lifetime: one network, one container per service, Toxiproxy on every edge.

``with Stack(sut_mode="resilient") as stack:`` starts everything from the topology table,
waits until each service speaks its protocol (SQL, AMQP, HTTP), and removes every container,
network and volume it made on the way out, whatever happened inside. Everything carries the
run label, and start-up first reaps what earlier runs whose process is gone left behind, so a
SIGKILLed run costs nothing but the next start's few hundred milliseconds.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

import docker  # noqa: E402
import docker.errors  # noqa: E402
import httpx  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.network import Network  # noqa: E402
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget  # noqa: E402
from toxiproxy import Toxiproxy  # noqa: E402

from harness import protections, topology  # noqa: E402
from harness.engine import connect  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.images import Builder  # noqa: E402

RUN_LABEL = "chaos-harness.run"
OWNER_LABEL = "chaos-harness.owner"
SERVICE_LABEL = "chaos-harness.service"
LOOPBACK = "127.0.0.1"
KEPT_OWNER = "chaos-up"  # the owner of a stack `chaos up` keeps: no process, so never reaped


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def new_run_id() -> str:
    """Sortable and unique enough for one machine: UTC time plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


# ---------------------------------------------------------------- ownership and the reaper

def _process_start(pid: int) -> str:
    """The kernel's start time of a process, so a reused pid is not mistaken for its owner."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_token(pid: int | None = None) -> str:
    """``pid:starttime`` of the process that owns a run."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_process_start(pid)}"


def owner_alive(token: str) -> bool:
    """Whether the process named by an owner token still runs (same pid, same start time)."""
    pid_text, _, start = token.partition(":")
    if not pid_text.isdigit():
        return True  # not a process of ours (a compose stack, say): only `chaos down` removes it
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start in ("", "?") or _process_start(pid) == start


def stale_runs(labels: list[dict[str, str]], keep: str | None = None) -> set[str]:
    """Runs whose owner is gone (pure: fed container labels, tested without an engine)."""
    runs: dict[str, str] = {}
    for label in labels:
        if RUN_LABEL in label:
            runs[label[RUN_LABEL]] = label.get(OWNER_LABEL, "")
    return {run for run, owner in runs.items() if run != keep and not owner_alive(owner)}


def remove_run(client: docker.DockerClient, run_id: str) -> int:
    """Removes every container, network and volume of one run; returns how many objects."""
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    removed = 0
    for container in client.containers.list(all=True, filters=selector):
        try:
            container.remove(force=True, v=True)
            removed += 1
        except docker.errors.NotFound:
            pass
    for network in client.networks.list(filters=selector):
        try:
            network.remove()
            removed += 1
        except docker.errors.NotFound:
            pass
    for volume in client.volumes.list(filters=selector):
        try:
            volume.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
    return removed


def reap(client: docker.DockerClient, keep: str | None = None, everything: bool = False) -> list[str]:
    """Removes what earlier runs left behind: runs whose owning process is gone (or all)."""
    labels = [c.labels for c in client.containers.list(all=True, filters={"label": RUN_LABEL})]
    labels += [n.attrs.get("Labels") or {} for n in client.networks.list(filters={"label": RUN_LABEL})]
    labels += [v.attrs.get("Labels") or {} for v in client.volumes.list(filters={"label": RUN_LABEL})]
    if everything:
        runs = {label[RUN_LABEL] for label in labels if RUN_LABEL in label} - {keep}
    else:
        runs = stale_runs(labels, keep)
    for run in sorted(runs):
        count = remove_run(client, run)
        say(f"reaped {count} objects left by run {run}")
    return sorted(runs)


# ---------------------------------------------------------------- readiness, per protocol

def _sql_ready(host: str, port: int) -> bool:
    import psycopg

    from harness.clients import database_params_at

    with psycopg.connect(**database_params_at(host, port, connect_timeout=2)) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _amqp_ready(host: str, port: int) -> bool:
    import logging

    import pika

    logging.getLogger("pika").setLevel(logging.CRITICAL)  # a broker still booting is expected here
    params = pika.ConnectionParameters(
        host=host, port=port, connection_attempts=1, socket_timeout=2, blocked_connection_timeout=2,
        credentials=pika.PlainCredentials(topology.BROKER_USER, topology.BROKER_PASSWORD))
    connection = pika.BlockingConnection(params)
    connection.close()
    return True


def _http_ready(path: str) -> Callable[[str, int], bool]:
    def check(host: str, port: int) -> bool:
        return httpx.get(f"http://{host}:{port}{path}", timeout=2).status_code == 200
    return check


READINESS: dict[str, Callable[[str, int], bool]] = {
    "sql": _sql_ready,
    "amqp": _amqp_ready,
    "http": _http_ready("/health"),
    "toxiproxy": _http_ready("/version"),
}


class ProtocolReady(WaitStrategy):
    """Waits until the service answers its own protocol, not merely until a port accepts TCP
    (Docker's proxy accepts connections long before the server inside listens)."""

    def __init__(self, protocol: str, port: int, timeout_s: float = 90) -> None:
        super().__init__()
        self.protocol, self.port = protocol, port
        self.with_startup_timeout(int(timeout_s)).with_poll_interval(0.1)

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        check = READINESS[self.protocol]
        host, port = LOOPBACK, int(container.get_exposed_port(self.port))  # loopback only, by design
        deadline = time.monotonic() + self._startup_timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            try:
                if check(host, port):
                    return
            except Exception as exc:  # any failure of the probe means "not ready yet"
                last_error = f"{type(exc).__name__}: {str(exc)[:120]}"
            container.reload()
            if container.status in ("exited", "dead"):
                tail = container.get_logs()[0].decode(errors="replace")[-600:]
                raise HarnessError(f"container exited before it was ready ({last_error}); last output: {tail}")
            time.sleep(self._poll_interval)
        raise HarnessError(f"not ready after {self._startup_timeout:.0f}s over {self.protocol}: {last_error}")


# ---------------------------------------------------------------- the stack

@dataclass
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class Stack:
    """A running copy of the shop for one run; a context manager that always cleans up."""

    def __init__(self, sut_mode: str = "resilient", run_id: str | None = None,
                 client: docker.DockerClient | None = None, startup_timeout_s: float = 120,
                 owner: str | None = None, disabled: tuple[str, ...] = ()) -> None:
        if sut_mode not in ("resilient", "fragile"):
            raise HarnessError(f"unknown SUT mode {sut_mode!r}: use resilient or fragile")
        self.sut_mode = sut_mode
        self.disabled = protections.checked(disabled)  # off from the start (SUT_DISABLE)
        self.run_id = run_id or new_run_id()
        # What the shop's control endpoints ask for: new for each stack, handed to its services
        # (topology.service_env) and read back by a process that attaches (AttachedStack).
        self.control_secret = secrets.token_urlsafe(32)
        # Whose lifetime the run shares: this process by default. A kept stack (`chaos up`) names
        # no process, so only `chaos down` removes it.
        self.owner = owner or owner_token()
        self.client = client or connect()
        self.startup_timeout_s = startup_timeout_s
        self.containers: dict[str, DockerContainer] = {}
        self.network: Network | None = None
        self._toxiproxy = Toxiproxy()
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[str, int], Endpoint] = {}

    # lifecycle
    def __enter__(self) -> "Stack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.run_id, OWNER_LABEL: self.owner}

    def start(self) -> "Stack":
        started = time.monotonic()
        reap(self.client, keep=self.run_id)
        from harness.faults import registry  # faults a killed process left on surviving runs

        registry.reap_stale(self.client)
        builder = Builder(self.client)
        images = {name: builder.image(name) for name in {s.image for s in topology.SERVICES.values()}}
        self.timings["images"] = time.monotonic() - started
        say(f"run {self.run_id}: starting {len(topology.SERVICES)} containers ({self.sut_mode} shop)")
        self.network = Network(docker_network_kw={"labels": self.labels}).create()
        for wave in topology.start_order():
            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                futures = {name: pool.submit(self._start_service, name, images) for name in wave}
                errors = {}
                for name, future in futures.items():
                    try:
                        future.result()
                    except Exception as exc:
                        errors[name] = exc
                if errors:
                    name, exc = next(iter(errors.items()))
                    raise HarnessError(f"{name} did not start: {exc}") from None
            if wave == ["toxiproxy"]:
                self._create_proxies()
        self.timings["ready"] = time.monotonic() - started
        say(f"run {self.run_id}: ready in {self.timings['ready']:.1f}s")
        return self

    def _start_service(self, name: str, images: dict[str, str]) -> None:
        service = topology.SERVICES[name]
        began = time.monotonic()
        container = DockerContainer(
            images[service.image],
            env=topology.service_env(service, self.sut_mode, self.disabled, self.control_secret),
            name=f"chaos-{self.run_id}-{service.host}",
            labels={**self.labels, SERVICE_LABEL: name},
            **({"hostname": service.hostname} if service.hostname else {}),
        )
        if service.command:
            container.with_command(list(service.command))
        container.with_network(self.network).with_network_aliases(service.host)
        if service.volume:
            mount, size = service.volume
            volume = self.client.volumes.create(
                name=f"chaos-{self.run_id}-{service.host}-data", driver="local", labels=self.labels,
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={size}"})
            container.with_volume_mapping(volume.name, mount, "rw")
        # Toxiproxy publishes every proxy's listener: the client edge for the harness's traffic,
        # and the internal edges so the network faults are proven through the proxy itself.
        ports = [service.port, *service.extra_ports] + [p.listen_port for p in topology.PROXIES.values()
                                                        if name == "toxiproxy"]
        for port in ports:
            container.ports[str(port)] = (LOOPBACK, None)  # type: ignore[assignment]  # loopback only
        container.waiting_for(ProtocolReady(service.readiness, service.port, self.startup_timeout_s))
        with self._lock:
            self.containers[name] = container
        container.start()
        self.timings[name] = time.monotonic() - began

    @property
    def toxiproxy(self) -> Toxiproxy:
        """The Toxiproxy client, pointed at this run's server. toxiproxy-python keeps the server
        address in class state, so it is re-pointed on every access: with two stacks in one
        process, take proxies from the stack you mean right before using them."""
        api = self.endpoint("toxiproxy")
        self._toxiproxy.update_api_consumer(api.host, api.port)
        return self._toxiproxy

    def _create_proxies(self) -> None:
        self.toxiproxy.populate([
            {"name": p.name, "upstream": topology.upstream_address(p),
             "listen": f"0.0.0.0:{p.listen_port}", "enabled": True}
            for p in topology.PROXIES.values()
        ])

    def stop(self) -> None:
        """Removes this run's containers, network and volumes; safe to call twice."""
        try:
            count = remove_run(self.client, self.run_id)
        except docker.errors.DockerException as exc:
            say(f"cleanup of run {self.run_id} failed: {exc}; the next start will reap it")
            return
        if count:
            say(f"run {self.run_id}: removed {count} objects")
        self.containers.clear()
        self._endpoints.clear()

    # access
    def endpoint(self, service: str, port: int | None = None) -> Endpoint:
        """Where the harness reaches a container's port: always on 127.0.0.1."""
        port = port or topology.SERVICES[service].port
        key = (service, port)
        if key not in self._endpoints:
            container = self.containers[service]
            self._endpoints[key] = Endpoint(LOOPBACK, int(container.get_exposed_port(port)))
        return self._endpoints[key]

    def refresh(self, service: str) -> None:
        """Forgets a service's cached endpoints: a restart moves its published ports."""
        for key in [key for key in self._endpoints if key[0] == service]:
            del self._endpoints[key]

    def proxy_endpoint(self, proxy: str) -> Endpoint:
        """A proxy's listener as the harness reaches it (every one is published on 127.0.0.1)."""
        return self.endpoint("toxiproxy", topology.PROXIES[proxy].listen_port)

    @property
    def edge_url(self) -> str:
        return self.proxy_endpoint("edge_gateway").url

    def docker_container(self, service: str) -> docker.models.containers.Container:
        return self.client.containers.get(self.containers[service].get_container_id())

    def logs(self, service: str, since: float | None = None) -> list[dict]:
        """The service's structured log events (JSON lines), optionally since an epoch time."""
        raw = self.docker_container(service).logs(stdout=True, stderr=True).decode(errors="replace")
        events = []
        for line in raw.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (since is None or event.get("ts", 0) >= since):
                events.append(event)
        return events


def container_env(container: docker.models.containers.Container) -> dict[str, str]:
    """A container's environment as it was started (from the engine's record of it)."""
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def port_is_free(port: int) -> bool:
    """Whether a loopback port can be bound (for clear errors before the engine's own)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no owner
        try:
            sock.bind((LOOPBACK, port))
            return True
        except OSError:
            return False
