"""Long set-up steps (an image build, the wheel download, the Debian base) as a person waits.

On a terminal (stderr is one): a live display, one line per step naming what is being made,
with a spinner while it runs, its current detail (a build's Dockerfile step) updated in place,
and its elapsed time; finished steps stay listed. Anywhere else (`make setup` in CI, a log,
a test): the plain `[images] ...` lines the steps have always printed, one per event, which is
what a log reader greps. rich is imported only when a display is drawn.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from harness.escape import terminal


class Steps:
    """The steps of one set-up phase, whose plain lines start with ``[prefix]``. Steps may
    nest (a parent image built while its child waits): the display lasts while any runs.
    Used from one thread (images are resolved before the stack's start threads run)."""

    def __init__(self, prefix: str, stream: TextIO | None = None, terminal: bool | None = None) -> None:
        self.prefix = prefix
        self._stream = stream  # None: sys.stderr as it is at each use (pytest swaps it)
        self._terminal = terminal  # None: whether that stream is a terminal
        self._display: Any = None  # the rich Progress while a step runs on a terminal
        self._running = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def say(self, message: str) -> None:
        """One line of progress (stderr, so command output stays clean); above the display
        while one is drawn, so it neither tears nor is lost."""
        line = f"[{self.prefix}] {message}"
        if self._display is not None:
            from rich.text import Text

            self._display.console.print(Text(line))
        else:
            print(line, file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, what: str, done: str | None = None) -> Iterator[Callable[[str], None]]:
        """Runs the body as the step `what`; yields a function that reports its current detail.
        `done` is its closing line, with ``{elapsed}`` (seconds) to fill in; a step that fails
        ends without one (the error says what happened) and ends the display if it was the last."""
        if self._display is None and (self._terminal if self._terminal is not None else self.stream.isatty()):
            self._display = _display(self.stream)
            self._display.start()
        display, started = self._display, time.monotonic()
        task = None if display is None else display.add_task(what, total=1, detail="")
        if display is None:
            self.say(what)

        def report(detail: str) -> None:
            if display is None:
                self.say(f"  {detail}")
            else:  # refreshed now: a build's steps are few, each worth seeing
                display.update(task, detail=terminal(detail), refresh=True)

        self._running += 1
        finished = False
        try:
            yield report
            finished = True
        finally:
            self._running -= 1
            closing = done.format(elapsed=time.monotonic() - started) if done and finished else None
            if display is None:
                if closing:
                    self.say(closing)
            else:
                display.update(task, completed=int(finished), detail=closing or ("" if finished else "failed"))
                display.stop_task(task)
                if self._running == 0:
                    display.stop()
                    self._display = None


def _display(stream: TextIO) -> Any:
    """A rich Progress on `stream`: spinner (a tick once done), what, its detail, elapsed time."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}", markup=False),
                    TextColumn("{task.fields[detail]}", style="dim", markup=False), TimeElapsedColumn(),
                    console=Console(file=stream, force_terminal=True), auto_refresh=True)
