"""A running stack seen from a process that did not start it (the `chaos` CLI, a reaper).

The faults need only a few things of a stack: its run id, where each service's port is
published, the Docker container behind a service and the Toxiproxy API. All of that can be
read back from the engine through the run label, so `chaos inject` works on a stack started
by a pytest session or any other process. Ports are always on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from toxiproxy import Toxiproxy

from harness import ownership, state
from harness.engine import connect
from harness.errors import HarnessError
from harness.ownership import REPLICA_LABEL, RUN_LABEL, SERVICE_LABEL, SUT_MODE_LABEL, TOPOLOGY_LABEL
from harness.stack import LOOPBACK, container_env, daemon_labels
from harness.topology import CONTROL_SECRET_ENV, Topology, active, load_cached
from harness.view import DerivedAccess, Endpoint, EndpointCache

NO_STACK = ("no stack is running: `chaos up` starts one (as do `docker-compose -f docker-compose.chaos.yml up` "
            "and a pytest session over scenarios/, while it runs)")


def published(container: Container, port: int) -> Endpoint | None:
    """Where a container's port is published on the loopback, from its current attributes."""
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    ports = [b["HostPort"] for b in bindings if b.get("HostPort")]
    return Endpoint(LOOPBACK, int(ports[0])) if ports else None


def control_secret_of(container: Container) -> str:
    """The control secret a container was started with ("" for one not given any)."""
    return container_env(container).get(CONTROL_SECRET_ENV, "")


@dataclass
class AttachedStack(DerivedAccess):
    """A StackView (harness.view) read from the engine: what harness.stack.Stack is to the
    process that started it. Its proxies' endpoints, edge URL and logs it inherits."""

    run_id: str
    owner: str  # the owner token of the process that started the run
    client: docker.DockerClient
    containers: dict[str, Container]
    topology: Topology = field(default_factory=active)
    _endpoints: EndpointCache = field(default_factory=EndpointCache)

    def docker_container(self, service: str) -> Container:
        container = self.containers[service]
        container.reload()
        return container

    def endpoint(self, service: str, port: int | None = None) -> Endpoint:
        port = port or self.topology.services[service].port
        found = self._endpoints.get((service, port)) or published(self.docker_container(service), port)
        if found is None:
            raise HarnessError(f"{service} of run {self.run_id} publishes no port {port}: is it running?")
        self._endpoints[(service, port)] = found
        return found

    def refresh(self, service: str) -> None:
        self._endpoints.forget(service)

    @property
    def sut_mode(self) -> str:
        """The build the run started with, from its containers' label (a stack started by
        docker-compose has none: what its environment says, else resilient)."""
        for container in self.containers.values():
            if SUT_MODE_LABEL in container.labels:
                mode: str = container.labels[SUT_MODE_LABEL]
                return mode
        for container in self.containers.values():
            if "SUT_MODE" in container_env(container):
                return container_env(container)["SUT_MODE"]
        return "resilient"

    @property
    def control_secret(self) -> str:
        """The run's control secret, read from the environment of a service given it."""
        given = [name for name, service in self.topology.services.items()
                 if service.takes_control_secret and name in self.containers]
        return control_secret_of(self.docker_container(given[0])) if given else ""

    @property
    def toxiproxy(self) -> Toxiproxy:
        api = self.endpoint("toxiproxy")
        from harness.faults.network import toxiproxy_at  # with the faults: the recorder and status need neither

        return toxiproxy_at(f"{api.host}:{api.port}")


def attach(run_id: str | None = None, client: docker.DockerClient | None = None) -> AttachedStack:
    """The named run's stack; when no run is named, the one this checkout means
    (ownership.default_run: its kept stack, else its newest running one, else the compose stack)."""
    client = client or connect()
    runs = ownership.runs_from_labels(daemon_labels(client, run_id))
    # A run counts while a container of it runs (one a process fault stopped is still the run's).
    # Sparse: other runs' teardowns on this daemon must not turn the listing into NotFound.
    newest: dict[str, int] = {}
    for found in client.containers.list(
        sparse=True, filters={"label": f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL}
    ):
        run = found.attrs["Labels"][RUN_LABEL]
        newest[run] = max(newest.get(run, 0), int(found.attrs.get("Created") or 0))
    if run_id is None:
        run_id = ownership.default_run([ownership.Candidate(runs[run], created) for run, created in newest.items()
                                        if run in runs], state.state_identity())
        if run_id is None:
            others = f"{len(newest)} of other checkouts or sessions {'is' if len(newest) == 1 else 'are'} up"
            raise HarnessError(NO_STACK if not newest else
                               f"no stack of this checkout is running; {others} ({', '.join(sorted(newest))}): "
                               "pass --run RUN to use one")
    # A config fault's replica carries its service's labels but is no service of the stack (the
    # engine lists it first, as the newest, so today the service wins anyway; this does not rely on it).
    containers = {c.name if REPLICA_LABEL in c.labels else c.labels.get(SERVICE_LABEL, c.name): c
                  for c in client.containers.list(all=True, ignore_removed=True,
                                                  filters={"label": f"{RUN_LABEL}={run_id}"})}
    if run_id not in newest or not containers:
        raise HarnessError(f"no stack of run {run_id} is running: `chaos status` lists runs with faults")
    run = runs.get(run_id, ownership.Run(run_id))
    # Faults injected into a kept stack outlive the command and belong to no process (the stack's
    # starter exited once it was green); on any other run, to the run's owner.
    owner = ownership.KEPT_OWNER if run.kept else run.owner
    return AttachedStack(run_id, owner, client, containers, topology_of(containers))


def topology_of(containers: dict[str, Container]) -> Topology:
    """The topology a run was started from (its containers' label), when that file is still
    there; else this process's (a compose stack carries none)."""
    for container in containers.values():
        path = container.labels.get(TOPOLOGY_LABEL)
        if path and Path(path).is_file():
            return load_cached(path)
    return active()


def still_there(run_id: str, every_s: float) -> Callable[[], bool]:
    """A check cheap enough for every turn of a long loop (a recorder, a load's runner): whether
    the run still exists, asked of the engine at most once per every_s (`chaos down` ends it)."""
    checked = time.monotonic()

    def check() -> bool:
        nonlocal checked
        if time.monotonic() - checked <= every_s:
            return True
        checked = time.monotonic()
        try:
            attach(run_id)
        except HarnessError:
            return False
        return True
    return check
