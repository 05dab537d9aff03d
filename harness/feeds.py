"""The client of a service's bounded, sequenced lists, read after a cursor.

A service that keeps what it saw in bounded lists (the shop's shop.ring: each item numbered, the
list answering `GET <path>?since=N&limit=M` with its items under the list's name, `cursor` and
`newest`) is read here: a client marks where it starts (`mark()`, at a scenario's start) and reads
only what came after, so a kept stack's history is read, never wiped. The alert reader
(harness.alerts) and a system's own observers (the shop's vendor and mail clients) build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import httpx

from harness.errors import HarnessError
from harness.topology import Topology, control_headers
from harness.view import StackView

# One read of a bounded list returns at most this many items (the shop's shop.ring.PAGE); a
# full read of a list takes at most MAX_PAGES reads (its capacity, 10,000, and a margin).
PAGE = 1_000
MAX_PAGES = 12


@dataclass
class Feeds:
    """Base of the clients of bounded, sequenced lists: FEEDS names each list's path (its items
    are under the list's name). `marks` holds, per list, the cursor reads start after: 0
    (everything held) until `mark()`. SERVICE names the service read, unless a subclass finds it
    in the topology (service_in)."""

    FEEDS: ClassVar[dict[str, str]] = {}
    SERVICE: ClassVar[str] = ""
    base_url: str
    secret: str
    http: httpx.Client = field(init=False)
    marks: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=5.0, headers=control_headers(self.secret))
        self.marks = dict.fromkeys(self.FEEDS, 0)

    @classmethod
    def service_in(cls, system: Topology) -> str | None:
        """The service of a topology this client reads (None: the topology has none)."""
        return cls.SERVICE if cls.SERVICE in system.services else None

    @classmethod
    def of(cls, stack: StackView) -> Self:
        """The client of a stack's service, with the run's control secret."""
        service = cls.service_in(stack.topology)
        if service is None:
            raise HarnessError(f"the system {stack.topology.name!r} has no service that {cls.__name__} reads "
                               "(see its topology file's services and capabilities)")
        return cls(stack.endpoint(service).url, stack.control_secret)

    def _page(self, feed: str, since: int, limit: int) -> dict[str, Any]:
        response = self.http.get(self.FEEDS[feed], params={"since": since, "limit": limit})
        return answer(response)

    def newest(self, feed: str) -> int:
        """The sequence number of the list's newest item (0: none yet)."""
        return int(self._page(feed, 0, 0)["newest"])

    def mark(self) -> dict[str, int]:
        """From now on, reads give only what arrives after this moment (a scenario's start)."""
        self.marks = {feed: self.newest(feed) for feed in self.FEEDS}
        return dict(self.marks)

    def since_mark(self, feed: str) -> list[dict[str, Any]]:
        """Every item after the mark that the list still holds, oldest first (bounded reads)."""
        items, cursor = [], self.marks[feed]
        for _ in range(MAX_PAGES):
            page = self._page(feed, cursor, PAGE)
            items += page[feed]
            if len(page[feed]) < PAGE:
                break
            cursor = page["cursor"]
        return items

    def recent(self, feed: str, cursor: int | None, keep: int) -> tuple[list[dict[str, Any]], int]:
        """At most `keep` items after `cursor` (None: the newest `keep`), and the cursor to pass
        next time: what a live view redrawn every second reads, two small requests however long
        the list. A cursor from before a restart of the service (beyond its newest) starts over."""
        newest = self.newest(feed)
        if cursor is None or cursor > newest or newest - cursor > keep:
            cursor = max(0, newest - keep)
        page = self._page(feed, cursor, keep)
        return page[feed], int(page["cursor"])

    def close(self) -> None:
        self.http.close()


def answer(response: httpx.Response) -> dict[str, Any]:
    """A control API's JSON answer; an error status raises (httpx.HTTPStatusError)."""
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body
