"""The Docker engine connection, with an error a person can act on when it is missing."""

from __future__ import annotations

import os

import docker
import docker.errors

from harness.errors import HarnessError


def connect() -> docker.DockerClient:
    """A client whose engine answered a ping; raises HarnessError when none does."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise HarnessError(
            f"the Docker engine is not reachable at {where} ({type(exc).__name__}): "
            "start it with `make engine` (or `dockerd &`), or point DOCKER_HOST at a running one"
        ) from None
    return client
