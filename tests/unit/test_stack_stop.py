"""Stack.stop() removes what it can, each object on its own, and what start threads made late
(a fake engine client: the per-object logic, not Docker)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import docker.errors

from harness.stack import RUN_LABEL, Stack


class Thing:
    def __init__(self, engine, kind, name, refuses=False):
        self.engine, self.kind, self.name, self.id, self.refuses = engine, kind, name, name, refuses

    def remove(self, **_):
        if self.refuses:
            raise docker.errors.APIError(f"{self.kind} {self.name} is in use")
        self.engine.things.remove(self)


class Listing:
    def __init__(self, engine, kind):
        self.engine, self.kind = engine, kind

    def list(self, filters=None, **_):
        self.engine.listed.set()
        return [t for t in self.engine.things if t.kind == self.kind and filters == self.engine.selector]


class Engine:
    """Just enough of docker.DockerClient for remove_run_objects: list by label, remove."""

    def __init__(self, run_id):
        self.selector = {"label": f"{RUN_LABEL}={run_id}"}
        self.things: list[Thing] = []
        self.listed = threading.Event()
        self.containers, self.networks, self.volumes = (Listing(self, k) for k in ("container", "network", "volume"))

    def add(self, kind, name, refuses=False):
        self.things.append(Thing(self, kind, name, refuses))


def test_one_object_refusing_removal_does_not_keep_the_others(capsys):
    """Catches stop() returning at the first engine error (networks and volumes left behind),
    and a failure that is not said."""
    engine = Engine("run-a")
    engine.add("container", "stuck", refuses=True)
    engine.add("container", "api")
    engine.add("network", "net")
    engine.add("volume", "data")
    stack = Stack(run_id="run-a", client=engine)
    stack.stop()
    assert [t.name for t in engine.things] == ["stuck"]
    err = capsys.readouterr().err
    assert "could not remove container stuck" in err and "removed 3 objects" in err
    stack.stop()  # safe twice: says the refusal again, raises nothing
    assert [t.name for t in engine.things] == ["stuck"]


def test_what_a_start_thread_creates_after_the_removal_is_removed_too():
    """Catches stop() removing the run while a start thread still runs (an interrupted start):
    the container that thread creates afterwards would stay, owned by a dead run."""
    engine = Engine("run-b")
    stack = Stack(run_id="run-b", client=engine)
    late = threading.Event()

    def start_thread():  # as a wave's thread: creates its container after stop()'s first pass
        engine.listed.wait(10)
        engine.add("container", "late")
        late.set()

    pool = ThreadPoolExecutor(max_workers=1)
    stack._starting.append(pool.submit(start_thread))
    stack.stop()
    pool.shutdown()
    assert late.is_set() and engine.things == []
