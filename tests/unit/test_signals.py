"""Teardown survives a second signal: the state in harness/signals.py, in this process and in a
real pytest session (real signals, no engine)."""

import os
import signal
import subprocess
import textwrap

import pytest

from harness import signals
from tests.conftest import BIN, ROOT


@pytest.fixture
def handlers():
    signals.reset()
    signals.install()
    yield
    signals.uninstall()
    signals.reset()


def test_a_signal_inside_a_teardown_section_is_owed_not_raised(handlers):
    """Catches a handler that raises inside a teardown section (a heal or a removal cut short)
    and an owed interrupt that is never raised, or ends with the wrong exit code."""
    with signals.teardown():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert signals.owed() and signals.exit_code() == 143  # the first signal's code
    assert signals.noted() == ["SIGTERM", "SIGINT"]
    with pytest.raises(KeyboardInterrupt):
        signals.raise_owed()
    signals.raise_owed()  # once only


def test_after_the_first_interrupt_further_signals_are_noted(handlers, capsys):
    """Catches a second signal raised during the unwinding the first one started."""
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)  # no exception: the teardown goes on
    assert signals.exit_code() == 130 and not signals.owed()
    assert "SIGTERM noted: teardown in progress" in capsys.readouterr().err


SESSION = textwrap.dedent('''
    import os, signal, time, pytest
    OUT = os.environ["OUT"]

    @pytest.fixture(scope="session")
    def session_end():  # stands for the stack: torn down last
        yield
        open(OUT, "a").write("session torn down\\n")

    @pytest.fixture
    def heal(session_end):  # stands for the chaos fixture's heals
        yield
        if os.environ["WHEN"] == "teardown":
            os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the handlers run between bytecodes: give them a few
        open(OUT, "a").write("healed\\n")

    def test_one(heal):
        if os.environ["WHEN"] == "call":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # interrupted at once

    def test_two(session_end):
        open(OUT, "a").write("second test ran\\n")
''')


@pytest.mark.parametrize("when", ["teardown", "call"])
def test_a_session_interrupted_twice_still_tears_everything_down(tmp_path, when):
    """SIGINT then SIGTERM, both during a test's teardown (`teardown`), or SIGINT in the test and
    SIGTERM in its teardown (`call`): catches a signal raised inside a finalizer, which makes
    pytest skip the finalizers after it (the heals, the stack's removal), a session that goes on
    to the next test after an owed interrupt, and pytest's own exit code 2 for an interrupt."""
    (tmp_path / "test_session.py").write_text(SESSION)
    out = tmp_path / "out"
    result = subprocess.run([str(BIN / "pytest"), str(tmp_path / "test_session.py"), "-q", "-p", "no:cacheprovider",
                             f"--rootdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "OUT": str(out), "WHEN": when})
    assert out.read_text().splitlines() == ["healed", "session torn down"], result.stdout + result.stderr
    assert result.returncode == 130, result.stdout + result.stderr
    assert "SIGTERM noted: teardown in progress" in result.stderr
