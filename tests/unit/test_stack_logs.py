"""A stack's logs (StackView.logs, as both stacks have it) ask the engine for the part of the log
it needs, not the whole log."""

from __future__ import annotations

import json

from harness import view


class Container:
    """Stands in for the engine's container: its log, cut as the engine would cut it."""

    def __init__(self, events: list[dict]) -> None:
        self.events, self.asked = events, []

    def logs(self, **options):
        self.asked.append(options)
        lines = [e for e in self.events if options.get("since") is None or e["ts"] >= options["since"]]
        lines = lines[-options["tail"]:] if options.get("tail") else lines
        return ("not json\n" + "\n".join(json.dumps(e) for e in lines)).encode()


class Reader(view.DerivedAccess):
    """A stack whose every service is the one container."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def endpoint(self, service: str, port: int | None = None) -> view.Endpoint:
        raise AssertionError("logs need no endpoint")

    def docker_container(self, service: str) -> Container:
        return self.container


def test_logs_since_are_cut_by_the_engine_and_bounded():
    """Catches logs downloading a day's whole log to filter it in Python: the engine is
    asked with since= (a little early) and a bounded tail, and the events' own ts decides."""
    container = Container([{"ts": 1000.0 + i, "event": f"e{i}"} for i in range(10)])
    events = Reader(container).logs("api_gateway", since=1005.0)
    assert [e["event"] for e in events] == ["e5", "e6", "e7", "e8", "e9"]
    (asked,) = container.asked
    assert asked["since"] == 1005.0 - view.LOG_SINCE_MARGIN_S and asked["tail"] == view.LOG_TAIL_LINES
    assert len(Reader(container).logs("api_gateway")) == 10 and "since" not in container.asked[-1]
