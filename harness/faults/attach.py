"""A running stack seen from a process that did not start it (the `chaos` CLI, a reaper).

The faults need only a few things of a stack: its run id, where each service's port is
published, the Docker container behind a service and the Toxiproxy API. All of that can be
read back from the engine through the run label, so `chaos inject` works on a stack started
by a pytest session or any other process. Ports are always on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import docker
import docker.errors
from docker.models.containers import Container
from toxiproxy import Toxiproxy

from harness import topology
from harness.engine import connect
from harness.errors import HarnessError
from harness.faults.network import toxiproxy_at
from harness.stack import LOOPBACK, OWNER_LABEL, RUN_LABEL, SERVICE_LABEL, Endpoint, Stack, container_env

NO_STACK = ("no stack is running: `chaos up` starts one (as do `docker-compose -f docker-compose.chaos.yml up` "
            "and a pytest session over scenarios/, while it runs)")


def published(container: Container, port: int) -> Endpoint | None:
    """Where a container's port is published on the loopback, from its current attributes."""
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    ports = [b["HostPort"] for b in bindings if b.get("HostPort")]
    return Endpoint(LOOPBACK, int(ports[0])) if ports else None


def control_secret_of(container: Container) -> str:
    """The control secret a shop container was started with ("" for one of another image)."""
    return container_env(container).get(topology.CONTROL_SECRET_ENV, "")


def container_secret(container_id: str, client: docker.DockerClient | None = None) -> str:
    """The control secret of a container by id ("" when it is gone): what a reaper in another
    process sends to heal a fault through the shop's control API."""
    try:
        return control_secret_of((client or connect()).containers.get(container_id))
    except docker.errors.NotFound:
        return ""


def container_endpoint(container_id: str, port: int,
                       client: docker.DockerClient | None = None) -> Endpoint | None:
    """A container's published port now; None when it is gone or not running."""
    try:
        container = (client or connect()).containers.get(container_id)
    except docker.errors.NotFound:
        return None
    return published(container, port) if container.status == "running" else None


@dataclass
class AttachedStack:
    """The attributes of harness.stack.Stack that the faults use, read from the engine."""

    run_id: str
    owner: str  # the owner token of the process that started the run
    client: docker.DockerClient
    containers: dict[str, Container]
    _endpoints: dict[tuple[str, int], Endpoint] = field(default_factory=dict)

    def docker_container(self, service: str) -> Container:
        container = self.containers[service]
        container.reload()
        return container

    def endpoint(self, service: str, port: int | None = None) -> Endpoint:
        port = port or topology.SERVICES[service].port
        found = self._endpoints.get((service, port)) or published(self.docker_container(service), port)
        if found is None:
            raise HarnessError(f"{service} of run {self.run_id} publishes no port {port}: is it running?")
        self._endpoints[(service, port)] = found
        return found

    # The same as a started stack's: they only read self.endpoint, self._endpoints and
    # self.docker_container.
    refresh = Stack.refresh
    proxy_endpoint = Stack.proxy_endpoint
    edge_url = Stack.edge_url
    logs = Stack.logs

    @property
    def sut_mode(self) -> str:
        """The shop build the run started with, read from its gateway's environment."""
        if "api_gateway" not in self.containers:
            return "unknown"
        return container_env(self.docker_container("api_gateway")).get("SUT_MODE", "resilient")

    @property
    def control_secret(self) -> str:
        """The run's control secret, read from a shop service's environment (as sut_mode is)."""
        shop = [name for name, service in topology.SERVICES.items() if service.shop and name in self.containers]
        return control_secret_of(self.docker_container(shop[0])) if shop else ""

    @property
    def toxiproxy(self) -> Toxiproxy:
        api = self.endpoint("toxiproxy")
        return toxiproxy_at(f"{api.host}:{api.port}")


def attach(run_id: str | None = None, client: docker.DockerClient | None = None) -> AttachedStack:
    """The run's stack; when no run is named, the newest kept stack (else the newest running)."""
    client = client or connect()
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    runs: dict[str, list[Container]] = {}
    for container in client.containers.list(all=True, filters={"label": selector}):
        runs.setdefault(container.labels[RUN_LABEL], []).append(container)
    running = {run: found for run, found in runs.items() if any(c.status == "running" for c in found)}
    if not running:
        raise HarnessError(f"no stack of run {run_id} is running: `chaos status` lists runs with faults"
                           if run_id else NO_STACK)
    # A person means the stack kept for them (`chaos up`, docker-compose), not one a test session
    # happens to have up: kept stacks are owned by no process.
    kept = {run: found for run, found in running.items()
            if not found[0].labels.get(OWNER_LABEL, "").partition(":")[0].isdigit()}
    pool = kept or running
    run = max(pool, key=lambda name: max(c.attrs.get("Created", "") for c in pool[name]))
    containers = {c.labels.get(SERVICE_LABEL, c.name): c for c in running[run]}
    owner = next(iter(containers.values())).labels.get(OWNER_LABEL, "")
    return AttachedStack(run, owner, client, containers)
