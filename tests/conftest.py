"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs a command of the venv (chaos, pytest) from the project root, capturing output."""
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fragile_stack():
    """A second stack running the fragile shop, for tests that show a protection is absent."""
    from harness.stack import Stack

    with Stack(sut_mode="fragile") as stack:
        yield stack
