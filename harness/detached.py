"""Detached helpers: processes that outlive the one that started them (and its Ctrl-C or SIGKILL).

Each is ``python -m MODULE COMMAND ARG...`` in its own session, sharing the starter's state
directory: the `--for` healer (``heal-after``: its loop here, its entry point with what it heals
in harness.faults.registry), the guardrail watcher (harness.guardrails) and the game-day
recorder (harness.gameday). Each takes its input on the command line and says bad input in one
line with exit code 2 (``detached_main``). This module knows none of them: they import it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from harness import state
from harness.errors import HarnessError
from harness.state import Record

MAX_FOR_S = 86400.0  # the longest time box (`--for`): a healer sleeps at most this long
HEALER_SLICE_S = 2.0  # how often the `--for` healer looks whether its record was healed already
HEALER_MODULE = "harness.faults.registry"  # where the healer's entry point is: what it heals with


def spawn_detached(module: str, *args: str, root: Path | None = None) -> int:
    """``python -m module args`` in its own session, sharing this state directory: it outlives
    this process (and a Ctrl-C or SIGKILL of it). Used by the `--for` healer and guardrails."""
    env = dict(os.environ, **{state.STATE_ENV: str(root or state.state_dir())})
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env=env)
    return process.pid


def spawn_healer(record_id: str, seconds: float, root: Path | None = None) -> int:
    """A detached process that heals the record after `seconds`, whatever happens to this one."""
    return spawn_detached(HEALER_MODULE, "heal-after", record_id, f"{seconds:.3f}", root=root)


def next_wait(left_s: float, slice_s: float = HEALER_SLICE_S) -> float:
    """How long the healer sleeps before it looks again: a slice, or what is left if less."""
    return max(0.0, min(slice_s, left_s))


def heal_after(record_id: str, seconds: float, heal: Callable[[Record], object],
               slice_s: float = HEALER_SLICE_S) -> int:
    """Heals the record with `heal` after `seconds` if it is still active. It looks every
    `slice_s` and exits as soon as the record is gone (healed by `chaos heal`, a teardown or the
    reaper), so no healer outlives its fault asleep. Bounded: at most MAX_FOR_S, in slices."""
    deadline = time.monotonic() + max(0.0, min(seconds, MAX_FOR_S))
    for _ in range(int(MAX_FOR_S / slice_s) + 2):
        record = state.load(record_id)
        if record is None:
            return 0
        left = deadline - time.monotonic()
        if left <= 0:
            heal(record)
            return 0
        time.sleep(next_wait(left, slice_s))
    return 0


def detached_main(argv: list[str], command: str, usage: str, action: Callable[..., object]) -> int:
    """The entry point of a detached helper (``command ARG...``): exit 2 with one line on bad input."""
    arity = usage.count(" ") - usage.split().index(command)
    if len(argv) != arity + 1 or argv[0] != command:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    try:
        action(*argv[1:])
    except (HarnessError, ValueError) as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    return 0
