"""The reaper: what abandoned runs and killed processes left behind, cleared before a stack starts.

Run by the commands that start stacks (`chaos up`, the pytest plugin's session), never by a
Stack itself: a run's objects are removed by their ownership labels (harness.stack.reap: a dead
owner on this host, an expired lease from another), then the fault records whose owner is dead
or whose time is up are healed, and those of runs now gone forgotten
(harness.faults.registry.reap_stale), and the game-day loads of runs now gone stopped and
forgotten (harness.gameday_load.reap). Runs first: a removed run's faults and load went with it.
"""

from __future__ import annotations

import docker

from harness import gameday_load
from harness.faults import registry
from harness.ownership import runs_from_labels
from harness.stack import daemon_labels, reap


def reap_abandoned(client: docker.DockerClient, keep: str | None = None) -> tuple[list[str], list[str]]:
    """Removes abandoned runs (all but `keep`), then heals or forgets stale fault records.
    Returns the runs removed and the fault records handled."""
    runs = reap(client, keep)
    handled = registry.reap_stale(client)
    gameday_load.reap(set(runs_from_labels(daemon_labels(client))))  # the loads of runs now gone
    return runs, handled
