"""What the harness uses of a running stack, whoever started it: one protocol, StackView.

A stack this process started (harness.stack.Stack) and one read back from the engine by its run
label (harness.faults.attach.AttachedStack) both implement it, so a fault, a probe, a client or
a report takes a StackView and works on either. The members both compute the same way from the
others (a proxy's endpoint, the edge URL, the logs) are written once here (DerivedAccess, which
both inherit); what differs (where a port is published, which object the engine's container
is) each class implements itself.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import HarnessError
from harness.topology import TOXIPROXY, Topology

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from toxiproxy import Toxiproxy

LOG_TAIL_LINES = 20_000  # per service and read: the newest; hours of a busy service's events
LOG_SINCE_MARGIN_S = 2.0  # the engine stamps a line when it reads it, just after the event's own ts


@dataclass
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class EndpointCache(dict[tuple[str, int], Endpoint]):
    """Where a (service, port) was found published, until a restart of the service moves it."""

    def forget(self, service: str) -> None:
        for key in [key for key in self if key[0] == service]:
            del self[key]


class StackView(Protocol):
    """A running stack as the faults, probes, clients, status and reports use it."""

    @property
    def run_id(self) -> str: ...

    @property
    def topology(self) -> Topology:
        """The topology the run was started from: its services, proxies and entry."""
        ...

    @property
    def owner(self) -> str:
        """The owner token whose lifetime the run's faults share (harness.ownership)."""
        ...

    @property
    def sut_mode(self) -> str:
        """The shop build the run started with: resilient or fragile."""
        ...

    @property
    def control_secret(self) -> str:
        """What the system's control endpoints ask for (harness.topology.CONTROL_HEADER)."""
        ...

    @property
    def client(self) -> docker.DockerClient: ...

    @property
    def containers(self) -> Mapping[str, Any]:
        """The run's containers by service name. Only the names are alike on both sides (a
        started stack holds Testcontainers' wrappers, an attached one the engine's containers):
        use docker_container for the engine's object."""
        ...

    @property
    def toxiproxy(self) -> Toxiproxy:
        """The Toxiproxy client pointed at this run's server."""
        ...

    def endpoint(self, service: str, port: int | None = None) -> Endpoint:
        """Where the harness reaches a service's port (its own port by default): on 127.0.0.1."""
        ...

    def refresh(self, service: str) -> None:
        """Forgets a service's known endpoints: a restart moves its published ports."""
        ...

    def docker_container(self, service: str) -> Container:
        """The engine's container of a service, as it is now."""
        ...

    def proxy_endpoint(self, proxy: str) -> Endpoint:
        """A proxy's listener as the harness reaches it (every one is published on 127.0.0.1)."""
        ...

    @property
    def edge_url(self) -> str:
        """The harness's entry into the system: the first entry proxy's listener."""
        ...

    def logs(self, service: str, since: float | None = None) -> list[dict[str, Any]]:
        """The service's structured log events (JSON lines), optionally since an epoch time."""
        ...


class DerivedAccess(ABC):
    """The StackView members that follow from `topology`, `endpoint` and `docker_container`
    alone, written once for both stacks, which inherit them. (They are not the protocol's own code: a class
    that subclassed the protocol would inherit its read-only properties, and a Stack could no
    longer assign its run_id or sut_mode.)"""

    topology: Topology

    @abstractmethod
    def endpoint(self, service: str, port: int | None = None) -> Endpoint: ...

    @abstractmethod
    def docker_container(self, service: str) -> Container: ...

    def proxy_endpoint(self, proxy: str) -> Endpoint:
        """A proxy's listener as the harness reaches it (every one is published on 127.0.0.1)."""
        return self.endpoint(TOXIPROXY, self.topology.proxies[proxy].listen_port)

    @property
    def edge_url(self) -> str:
        """The harness's entry into the system: the first entry proxy's listener."""
        if not self.topology.entry:
            raise HarnessError(f"topology {self.topology.path} names no entry: add `entry: [SERVICE]`")
        return self.proxy_endpoint(self.topology.entry[0]).url

    def logs(self, service: str, since: float | None = None) -> list[dict[str, Any]]:
        """The service's structured log events (JSON lines), optionally since an epoch time.

        The engine does the cutting (its own since=, a little early for lines stamped after
        their event's ts, and at most LOG_TAIL_LINES of the newest): a day-long game day's
        logs are never downloaded whole. The events' own ts then decides exactly."""
        window = {"since": max(since - LOG_SINCE_MARGIN_S, 1e-6)} if since is not None else {}
        raw = self.docker_container(service).logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES,
                                                  **window).decode(errors="replace")
        events = []
        for line in raw.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (since is None or event.get("ts", 0) >= since):
                events.append(event)
        return events
