"""Bounded, sequenced lists for what the vendor and the sink keep (journal, charges, alerts,
mails): a 24-hour game day must not grow them without end, and `chaos status --watch` reads
them every second, so a read takes only what is new.

Each item gets a sequence number (1, 2, ...) when it is appended; a read gives the items after
a cursor (at most `limit`) and the cursor to read from next. The oldest items are dropped past
the capacity; a read says how many it missed that way. A cursor beyond the newest item comes
from before a restart of the service (numbers start at 1 again): it reads from the start.
Only the standard library: pure logic, unit tested.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

CAPACITY = 10_000
PAGE = 1_000  # the most items one read returns


@dataclass
class Page:
    """One read: the items after the cursor, where to read next, how many were dropped between
    the cursor and the oldest item still held, and the newest seq (a reader's starting point)."""

    items: list[dict[str, Any]]
    cursor: int
    missed: int
    newest: int

    def as_json(self, name: str) -> dict[str, Any]:
        """The page as an endpoint answers it, the items under `name`."""
        return {name: self.items, "cursor": self.cursor, "missed": self.missed, "newest": self.newest}


@dataclass
class Ring:
    """Items in arrival order, at most `capacity` of them, each with its `seq`. Thread-safe:
    the sink's SMTP server appends from its own thread while the web server reads."""

    capacity: int = CAPACITY
    items: deque[dict[str, Any]] = field(default_factory=deque)
    last: int = 0  # the seq of the newest item ever appended
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def append(self, item: dict[str, Any]) -> dict[str, Any]:
        """Numbers the item (in place: a caller may still update it) and keeps it."""
        with self.lock:
            self.last += 1
            item["seq"] = self.last
            self.items.append(item)
            while len(self.items) > self.capacity:
                self.items.popleft()
        return item

    def since(self, cursor: int = 0, limit: int = PAGE) -> Page:
        """The items with a seq above `cursor`, oldest first, at most `limit` of them and never
        more than a PAGE (what a reader asks for is bounded here, for every endpoint at once)."""
        with self.lock:
            return self._since(cursor, min(limit, PAGE))

    def _since(self, cursor: int, limit: int) -> Page:
        cursor = 0 if cursor > self.last else max(cursor, 0)
        oldest = self.items[0]["seq"] if self.items else self.last + 1
        missed = max(0, oldest - cursor - 1) if cursor < self.last else 0
        start = max(0, cursor + 1 - oldest)  # seqs in the deque are consecutive
        taken = list(islice(self.items, start, start + max(limit, 0)))
        after = taken[-1]["seq"] if taken else (cursor if self.items else self.last)
        return Page(taken, after, missed, self.last)

    def clear(self) -> None:
        """Forgets every item; numbering goes on (a cursor taken before still reads correctly)."""
        with self.lock:
            self.items.clear()
