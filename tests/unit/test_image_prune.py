"""Older local builds are removed once a newer one is current; images in use stay."""

from types import SimpleNamespace

import docker.errors

from harness.images import prune


class FakeImages:
    def __init__(self, tags: list[list[str]], in_use: set[str]) -> None:
        self.images = [SimpleNamespace(tags=t) for t in tags]
        self.in_use, self.removed = in_use, []

    def list(self, filters: dict) -> list:
        assert filters == {"label": "chaos-harness.image"}
        return self.images

    def remove(self, tag: str) -> None:
        if tag in self.in_use:
            raise docker.errors.APIError("conflict: image is being used by a running container")
        self.removed.append(tag)


def test_only_older_local_builds_not_in_use_are_removed():
    images = FakeImages([["chaos-harness/shop:local-new", "chaos-harness/shop:latest"],
                         ["chaos-harness/shop:local-old"], ["chaos-harness/shop:local-busy"],
                         ["chaos-harness/postgres:local-1"],
                         ["chaos-harness/debian:bookworm-abc"], ["other/thing:local-x"]],
                        in_use={"chaos-harness/shop:local-busy"})
    current = {"shop": "chaos-harness/shop:local-new", "postgres": "chaos-harness/postgres:local-1"}
    assert prune(SimpleNamespace(images=images), current) == ["chaos-harness/shop:local-old"]
    assert images.removed == ["chaos-harness/shop:local-old"]
