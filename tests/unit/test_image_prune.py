"""Older local builds are removed once a newer one is current, base images and a topology's built
services alike; images in use stay, and another system's builds are never touched."""

from harness.images import local_build, repository, stale_builds

NEW, OLD, BUSY = "sha256:new", "sha256:old", "sha256:busy"


def test_only_older_local_builds_not_in_use_are_chosen():
    """Catches a prune that removes the current build, an image a container (even a stopped one)
    still uses, a build of an image not resolved here (postgres' official image is current, but the
    debian base and another project's `local-` tag are no builds of a current repository)."""
    images = [(NEW, ["chaos-harness/shop:local-new", "chaos-harness/shop:latest"]),
              (OLD, ["chaos-harness/shop:local-old"]), (BUSY, ["chaos-harness/shop:local-busy"]),
              ("sha256:pg", ["chaos-harness/postgres:local-1"]),
              ("sha256:deb", ["chaos-harness/debian:bookworm-abc"]), ("sha256:x", ["other/thing:local-x"])]
    current = {repository("shop"): "chaos-harness/shop:local-new", repository("postgres"): "postgres:16.4"}
    assert stale_builds(images, current, in_use={BUSY}) == ["chaos-harness/postgres:local-1",
                                                            "chaos-harness/shop:local-old"]


def test_a_services_older_builds_are_chosen_and_another_systems_are_not():
    """Catches service builds (`chaos-harness/<system>-<service>:local-<digest>`) never pruned (only
    the base image keys were: every change to a system's source left one more image behind), and a
    prune of one system's service that removes another system's builds, or its other services'."""
    images = [(NEW, [local_build("notes-web", "new")]), (OLD, [local_build("notes-web", "old")]),
              ("sha256:worker", [local_build("notes-worker", "old")]),
              ("sha256:other", [local_build("ledger-web", "old")])]
    current = {repository("notes-web"): local_build("notes-web", "new")}
    assert stale_builds(images, current, in_use=set()) == ["chaos-harness/notes-web:local-old"]
    assert stale_builds(images, current, in_use={OLD}) == []
