"""node-A's log files: rotated at a size, the rotated ones gzipped, a bounded number kept.

The manual's permanent fix 5 (ログローテーションの徹底): rotate and archive logs automatically
so that a log growing fast never exhausts the disk. The rotation is the standard library's
(logging.handlers.RotatingFileHandler, with the logging cookbook's namer and rotator that
compress); the switch is asked at every record, so turning log_rotation off at run time
leaves the current file to grow without bound, as a log without rotation does.

And Flood, what the disk.log_flood fault starts in the service: a log written fast, at a
bounded rate up to a bounded total, through such a handler. Only the standard library here:
the harness's unit tests read this file.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path

ROTATE_BYTES = 1024 * 1024  # a log is rotated once it would grow past this
KEEP = 4  # rotated (compressed) files kept; the oldest is deleted at the next rotation
COMPRESS_LEVEL = 1  # logs compress well at any level; a fast one keeps rotation off the service's back
CHUNK_BYTES = 64 * 1024  # what the flood writes per record: few records, so the service keeps serving
# (a live log is rotated before a record would take it past ROTATE_BYTES, so it stays below that)


def compressed_name(name: str) -> str:
    """The name of a rotated file: `x.log.1` becomes `x.log.1.gz`."""
    return f"{name}.gz"


def compress(source: str, dest: str) -> None:
    """Rotates by compressing the full log into `dest` and removing it."""
    with open(source, "rb") as plain, gzip.open(dest, "wb", compresslevel=COMPRESS_LEVEL) as packed:
        shutil.copyfileobj(plain, packed)
    os.remove(source)


class NodeLog(RotatingFileHandler):
    """A log file that is rotated while `rotating()` says so (the log_rotation protection,
    asked at every record), and otherwise grows. A write error (a full disk) is counted and
    kept, never raised into the service nor printed as a traceback per record."""

    def __init__(self, path: Path, rotating: Callable[[], bool],
                 max_bytes: int = ROTATE_BYTES, keep: int = KEEP) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=max_bytes, backupCount=keep, encoding="utf-8")
        self.namer, self.rotator = compressed_name, compress
        self.rotating = rotating
        self.failures = 0
        self.last_error = ""

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 (the library's name)
        return self.rotating() and bool(super().shouldRollover(record))

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (the library's name)
        import sys

        self.failures += 1
        self.last_error = repr(sys.exc_info()[1])


def flood_line(flood_id: str, seq: int) -> str:
    """One line of a flood: a verbose debug line, as a chatty service writes them."""
    return (f'{{"level": "debug", "event": "chaos_log_flood", "flood": "{flood_id}", "seq": {seq}, '
            f'"detail": "cache lookup for product-{seq % 97} missed; fetching it again from the database"}}')


class Flood:
    """Writes `total_bytes` into a log at `rate_bytes_s`, in a thread of its own (the service's
    event loop keeps serving), until done or stopped. Bounded: each record carries at least one
    byte of the total, so the loop ends after at most total_bytes records."""

    def __init__(self, flood_id: str, handler: NodeLog, rate_bytes_s: int, total_bytes: int,
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        self.id, self.handler = flood_id, handler
        self.rate_bytes_s, self.total_bytes, self.chunk_bytes = rate_bytes_s, total_bytes, chunk_bytes
        self.written = 0
        self._block = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-flood-{flood_id}", daemon=True)

    def start(self) -> "Flood":
        self._thread.start()
        return self

    def _chunk(self, size: int) -> str:
        """`size` bytes of flood lines (the handler adds the last newline), cut from one block
        made once: building lines per record would take the interpreter from the service."""
        if len(self._block) < size:
            lines, length = [], 0
            while length < size:
                lines.append(flood_line(self.id, len(lines)))
                length += len(lines[-1]) + 1
            self._block = "\n".join(lines)
        return self._block[:size - 1]

    def _run(self) -> None:
        began = time.monotonic()
        while self.written < self.total_bytes:
            due = began + self.written / self.rate_bytes_s  # when what is written so far was due
            if self._stop.wait(max(0.0, due - time.monotonic())):
                break
            size = min(self.chunk_bytes, self.total_bytes - self.written)
            self.handler.handle(logging.makeLogRecord({"msg": self._chunk(size), "levelno": logging.DEBUG}))
            self.written += size

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stops writing (bounded wait for the thread) and closes the file."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.handler.close()

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "written": self.written, "total_bytes": self.total_bytes,
                "rate_bytes_s": self.rate_bytes_s, "done": self.done, "errors": self.handler.failures,
                "last_error": self.handler.last_error}
