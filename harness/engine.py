"""The Docker engine connection, with an error a person can act on when it is missing."""

from __future__ import annotations

import docker
import docker.errors

from harness.errors import HarnessError


def connect() -> docker.DockerClient:
    """A client whose engine answered a ping; raises HarnessError when none does."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise HarnessError(
            f"the Docker engine is not reachable ({reason}): start it with `make engine` "
            "(or `dockerd &`), or set DOCKER_HOST"
        ) from None
    return client
