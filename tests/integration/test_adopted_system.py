"""A system that is not the shop, brought up from its own compose file and faulted end to end.

tests/systems/notes is a web service and a worker sharing PostgreSQL and RabbitMQ, written the way
an ordinary compose file is (addresses in DATABASE_URL / AMQP_URL / BROKER_URL, no Toxiproxy).
`chaos adopt` turns it into a topology; the harness starts that topology with a proxy on every
edge; cutting each proxy (`network.down`) must lower the health of every service that uses it,
healing must bring it back, and the game day's report must be written. Nothing here knows the
shop: what the harness does for this system it does from the topology file alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import httpx
import pytest

from harness import gameday, state, topology
from harness.faults import Chaos
from harness.probes import health_of
from harness.recovery import recovered_at
from harness.stack import Stack
from harness.topology import Topology
from tests.conftest import BIN, ROOT, run

pytestmark = pytest.mark.integration

NOTES = ROOT / "tests" / "systems" / "notes"
GREEN = 90
# Every edge of the compose file: (client, the service it uses). Adoption must find them all.
EDGES = {("web", "db"), ("web", "queue"), ("worker", "db"), ("worker", "queue")}
FALL_S = 15.0  # a cut dependency shows in health within its checks' bounds (1 s) and a check cycle
RECOVER_S = 30.0  # a healed one: the broker's reconnect backoff (at most 2 s) and a check cycle


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str,
               seen: Callable[[], object] = lambda: "") -> None:
    """Polls `condition` until it holds; after `timeout_s`, AssertionError naming `what` and
    what `seen` shows then."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f}s (now: {seen()})")
        time.sleep(0.2)


def scores(stack: Stack) -> dict[str, int | None]:
    """Each service's own score, as the game-day recorder reads them (probes.health_of: the
    topology's `health:` entries, asked by the harness itself)."""
    with health_of(stack) as health:
        return health.sample()["services"]


def all_green(stack: Stack) -> bool:
    return all(score is not None and score >= GREEN for score in scores(stack).values())


def edges(topo: Topology) -> set[tuple[str, str]]:
    """(client, used service) for every proxied dependency of the topology."""
    return {(name, topo.proxies[proxy].upstream) for name, service in topo.services.items()
            for proxy in service.uses}


def note_processed(stack: Stack, text: str) -> None:
    """The system's steady state: a note posted at the entry is stored, announced and processed."""
    created = httpx.post(stack.edge_url + "/notes", json={"text": text}, timeout=5.0)
    assert created.status_code == 201, created.text
    note = created.json()["id"]
    wait_until(lambda: httpx.get(f"{stack.edge_url}/notes/{note}", timeout=5.0).json().get("processed") is True,
               RECOVER_S, f"note {note} processed by the worker")


@contextmanager
def recording(stack: Stack, hz: float = 2.0, max_s: float = 300.0) -> Iterator[None]:
    """Health samples of the run into its game-day samples file while the block runs (bounded by
    max_s): what the recorder `chaos up` starts writes (gameday.record, which runs until its run is
    gone), with the same health source, stopped when the block ends."""
    path = gameday.samples_path(stack.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def record() -> None:
        deadline = time.monotonic() + max_s
        with health_of(stack) as health, path.open("a", encoding="utf-8") as out:
            while not stop.is_set() and time.monotonic() < deadline:
                out.write(json.dumps(health.sample()) + "\n")
                out.flush()
                stop.wait(1 / hz)

    thread = threading.Thread(target=record, name="notes-recorder", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The topology `chaos adopt` writes for the system's compose file, as a user runs it, into a
    directory of its own (the build context is then named relative to it). Its questions (the
    services' score fields) are left unanswered: a health URL without one counts 200 as 100."""
    out = tmp_path_factory.mktemp("adopted") / "chaos.yaml"
    result = run([str(BIN / "chaos"), "adopt", str(NOTES / "docker-compose.yml"), "-o", str(out)], timeout=60)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def notes(adopted: Path, tmp_path_factory: pytest.TempPathFactory):
    """The adopted system running, with this module's own state directory and the adopted file
    as the active topology (the fault families read their targets from it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(state.STATE_ENV, str(tmp_path_factory.mktemp("state")))
        patch.setenv(topology.TOPOLOGY_ENV, str(adopted))
        with Stack(topology=topology.load(adopted)) as stack:
            yield stack


def essentials(topo: Topology) -> dict[str, tuple[object, ...]]:
    """What a topology runs, service by service: image or build, port, readiness, command, env,
    what each edge's client is told, and where its health is read."""
    return {name: (s.image, s.build and (s.build.context, s.build.dockerfile, s.build.base), s.port,
                   s.readiness, s.readiness_params, s.command, s.env, s.edge_env, s.health and s.health.path)
            for name, s in topo.services.items()}


def test_adoption_finds_every_edge_and_runs_the_system_as_written(adopted: Path) -> None:
    """Catches an adopter that drops an edge (the worker's BROKER_URL) or invents one (an edge it
    misses is never proxied, so no fault could ever reach it), and one that runs the system other
    than its compose file says: a wrong port, readiness, base image, command or rewritten address
    (compared with the topology written by hand for it, tests/systems/notes/chaos.yaml)."""
    found = topology.load(adopted)
    assert edges(found) == EDGES
    assert found.entry == ("web",)
    assert essentials(found) == essentials(topology.load(NOTES / "chaos.yaml"))


def test_network_down_on_each_edge_lowers_its_clients_health_heal_restores_it_and_the_day_is_reported(
        notes: Stack, tmp_path: Path) -> None:
    """Catches a client handed the real address instead of the proxy's (cutting the proxy then
    changes nothing), a proxy forwarding to the wrong upstream, a heal that leaves the proxy
    disabled (health never comes back), and a game-day report that can't be made for a system
    without the shop's services (no report, or one that misses a fault or the recovery)."""
    wait_until(lambda: all_green(notes), RECOVER_S, "every service green", lambda: scores(notes))
    note_processed(notes, "before the faults")
    chaos = Chaos(notes)
    proxies = sorted({used for _, used in EDGES})
    with recording(notes):
        for proxy in proxies:
            clients = sorted(client for client, used in EDGES if used == proxy)
            with chaos.inject("network.down", proxy):
                wait_until(lambda: all((scores(notes).get(c) or 0) < GREEN for c in clients), FALL_S,
                           f"health of {clients} falls with {proxy} cut", lambda: scores(notes))
            wait_until(lambda: all_green(notes), RECOVER_S, f"every service green after {proxy} healed",
                       lambda: scores(notes))
        note_processed(notes, "after the faults")
        # The day ends as a person ends one: once the record shows health green and stable.
        wait_until(lambda: recovered_at(state.journal(notes.run_id), gameday.samples(notes.run_id)) is not None,
                   RECOVER_S, "the record shows health back to green and stable", lambda: scores(notes))
    run_dir = gameday.write_report(notes.run_id, tmp_path, notes)
    assert run_dir is not None
    [entry] = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["scenarios"]
    assert entry["name"] == "game_day" and entry["outcome"] == "passed", entry.get("reason")
    assert [(w["fault"], w["target"]) for w in entry["faults"]] == [("network.down", p) for p in proxies]
    assert entry["detected_at"] is not None and entry["recovered_at"] is not None
    for name in ("report.html", "timeline.csv", "incident-game_day.en.md", "incident-game_day.ja.md"):
        assert (run_dir / name).is_file(), name
