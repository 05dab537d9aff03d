"""Run ids: the one check every run id passes before it becomes part of a file path.

A run id names files (the fault journal, a game day's samples, the guardrail watcher's
conditions, reports/<run-id>/), so one that is not a run id (``../x``, ``/etc``, a typo) must
never reach a path. The ids that exist are exactly these:

    20261201T131600-a1b2c3       harness.stack.new_run_id (chaos up, pytest sessions, the matrix)
    20261201T131600-a1b2c3-s2    a session's n-th stack under --stack-per-scenario (harness.plugin)
    compose                      the docker-compose.chaos.yml stack
"""

from __future__ import annotations

import re

from harness.errors import HarnessError

PATTERN = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}(?:-s[1-9]\d{0,5})?|compose")  # whole name: fullmatch
LATEST = "latest"  # reports/latest: the newest run's report directory, a name `chaos report` takes too


def valid(run_id: str) -> str:
    """The run id unchanged, or HarnessError saying what a run id looks like and where to find one.
    Usable as an argparse ``type=`` (the CLI turns the error into one line and exit 2)."""
    if not is_run_id(run_id):
        raise HarnessError(f"bad run id {str(run_id)[:80]!r}: a run id looks like 20261201T131600-a1b2c3 "
                           "(or -s2 after it, or compose); `chaos status` and `ls reports/` show them")
    return run_id


def is_run_id(name: str) -> bool:
    """Whether a name (a container's run label, say) is a run id this harness made."""
    return isinstance(name, str) and PATTERN.fullmatch(name) is not None


def valid_or_latest(name: str) -> str:
    """A run id, or ``latest`` (the newest run's reports)."""
    return name if name == LATEST else valid(name)
