"""ProtocolReady's wait loop over a fake container: how often it asks the engine, and that an
exited container still ends the wait."""

from __future__ import annotations

import pytest

from harness import stack as stack_module
from harness.errors import HarnessError
from harness.stack import STATUS_EVERY, ProtocolReady
from harness.topology import Service

SERVICE = Service("web", "web", 8000, "http", {"path": "/health"})


class FakeContainer:
    """What the wait strategy uses of a testcontainers container; counts the engine inspects."""

    def __init__(self, status: str = "running") -> None:
        self.status, self.reloads = status, 0

    def get_exposed_port(self, port: int) -> int:
        return port

    def reload(self) -> None:
        self.reloads += 1

    def get_logs(self) -> tuple[bytes, bytes]:
        return b"boom: it died", b""


def answers_after(failures: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The readiness check fails `failures` times, then answers."""
    calls = iter(range(failures + 1))
    monkeypatch.setattr(stack_module.readiness, "ready", lambda *_: next(calls) >= failures)


def strategy() -> ProtocolReady:
    ready = ProtocolReady(SERVICE, timeout_s=30)
    ready._poll_interval = 0  # the loop's logic, not its pace
    return ready


def test_the_engine_is_asked_once_every_status_every_failed_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches: the container's state inspected after every failed check (an engine round trip,
    ~2.5 ms of CPU, ten times a second for each booting service)."""
    answers_after(3 * STATUS_EVERY + 2, monkeypatch)
    container = FakeContainer()
    strategy().wait_until_ready(container)  # type: ignore[arg-type]
    assert container.reloads == 3


def test_a_container_that_exits_ends_the_wait_with_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches: a container that exited while booting waited for until the timeout (its state
    never asked), or the error without what the container printed."""
    answers_after(10 * STATUS_EVERY, monkeypatch)
    container = FakeContainer(status="exited")
    with pytest.raises(HarnessError, match="exited before it was ready.*boom: it died"):
        strategy().wait_until_ready(container)  # type: ignore[arg-type]
    assert container.reloads == 1
