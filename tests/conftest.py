"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs a command of the venv (chaos, pytest) from the project root, capturing output."""
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


import pytest  # noqa: E402

OWN_REPORTS = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before the plugin's, which places junit.xml under the reports
def pytest_configure(config: pytest.Config) -> None:
    """The plugin writes reports by default into reports/ of the rootdir, here the repository's:
    a session of the harness's own tests (`make test`) would put its junit.xml there while it
    runs, and the reports of any chaos-marked test it collects. It writes them to a temporary
    directory instead, removed at its end (--chaos-reports still wins). Sessions the tests start
    in a subprocess pass --chaos-reports or --rootdir of their own tmp_path."""
    if config.getoption("chaos_reports", None) is None:
        config.option.chaos_reports = config.stash[OWN_REPORTS] = tempfile.mkdtemp(prefix="chaos-harness-tests-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if OWN_REPORTS in config.stash:
        shutil.rmtree(config.stash[OWN_REPORTS], ignore_errors=True)


@pytest.fixture(scope="session")
def fragile_stack():
    """A second stack running the fragile shop, for tests that show a protection is absent."""
    from harness.stack import Stack

    with Stack(sut_mode="fragile") as stack:
        yield stack
