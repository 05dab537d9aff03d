"""Interrupts that let teardown finish: the first SIGINT/SIGTERM/SIGHUP interrupts, later ones wait.

A CI cancel sends SIGINT, then SIGTERM a few seconds later, then SIGKILL. Raised as
KeyboardInterrupt each time, the second signal lands in the middle of the first one's teardown
(a heal, the stack's removal) and pytest stops tearing down at that finalizer: the stack stays.
So one state per process, shared by the pytest plugin, the stack and the CLI:

- the first signal is raised as KeyboardInterrupt (the run unwinds) unless a teardown section
  is running, in which case it is only noted and owed: ``raise_owed()`` raises it at a point
  where raising is safe (pytest: after a test's whole teardown);
- every later signal, and every signal inside a ``teardown()`` section, is noted on stderr in
  one line and not raised;
- ``exit_code()`` is the interrupt's own code (128 + the first signal: 130, 143, 129), which the
  run ends with once its teardown is done.

Handlers run in the main thread only, so the state needs no lock.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Callable

INTERRUPTS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
WITH_HANGUP: tuple[signal.Signals, ...] = (*INTERRUPTS, signal.SIGHUP)  # a terminal closed: the CLI's too


@dataclass
class _State:
    first: int | None = None  # the signal that interrupted the run
    raised: bool = False  # whether the interrupt has been raised (the run is unwinding)
    depth: int = 0  # teardown sections running
    noted: list[int] = field(default_factory=list)  # every signal received, in order
    previous: dict[int, Any] = field(default_factory=dict)  # handlers install() replaced
    say: Callable[[str], None] = field(default=lambda line: _to_stderr(line))


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


_state = _State()


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _state.noted.append(signum)
    if _state.first is None:
        _state.first = signum
    if _state.raised or _state.depth:
        _state.say(f"chaos: {_name(signum)} noted: teardown in progress; the run ends with exit code "
                   f"{exit_code()} once it is done")
        return
    _state.raised = True
    raise KeyboardInterrupt


def install(signals: tuple[signal.Signals, ...] = INTERRUPTS, say: Callable[[str], None] | None = None) -> None:
    """Handles these signals as above (idempotent); uninstall() puts the earlier handlers back.
    `say` writes the one line a noted signal gets (pytest's plugin passes one that gets past
    output capture)."""
    if say is not None:
        _state.say = say
    for signum in signals:
        current = signal.getsignal(signum)
        if current is not _on_signal:
            _state.previous[signum] = current
            signal.signal(signum, _on_signal)


def uninstall() -> None:
    """The handlers install() replaced, back (an in-process pytest run must not leave its own)."""
    for signum, previous in _state.previous.items():
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    _state.previous.clear()
    _state.say = _to_stderr


def reset() -> None:
    """Forgets every signal (a new run in the same process, or a test)."""
    _state.first, _state.raised, _state.depth = None, False, 0
    _state.noted.clear()


@contextmanager
def teardown() -> Iterator[None]:
    """While this runs, SIGINT/SIGTERM are noted, not raised: wrap what must finish (heals,
    removals). Sections nest. An interrupt noted inside is owed, not raised on exit, because
    the caller may be a finalizer whose exception would cut short the finalizers after it."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1


def pending() -> int | None:
    """The signal that interrupted this run, or None: whether teardown should hurry (skip what
    the removal of the stack makes moot)."""
    return _state.first


def owed() -> bool:
    """Whether an interrupt was noted but never raised (it came during a teardown section)."""
    return _state.first is not None and not _state.raised


def raise_owed() -> None:
    """Raises the owed interrupt as KeyboardInterrupt, once; a no-op when none is owed."""
    if owed() and not _state.depth:
        _state.raised = True
        raise KeyboardInterrupt


def exit_code() -> int | None:
    """128 + the interrupting signal, as a shell reports a process it ended (130 for SIGINT)."""
    return None if _state.first is None else 128 + _state.first


def noted() -> list[str]:
    """The names of every signal received, in order (for reports and tests)."""
    return [_name(signum) for signum in _state.noted]
