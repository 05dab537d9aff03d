"""Long set-up steps: a live display naming what is being built on a terminal, the plain
`[images]` lines everywhere else (CI's `make setup`, logs); builds driven by a fake engine."""

from __future__ import annotations

import io
from types import SimpleNamespace

import docker.errors
import pytest

from harness import images
from harness.progress import Steps


def _steps(terminal: bool) -> tuple[Steps, io.StringIO]:
    stream = io.StringIO()
    return Steps("images", stream=stream, terminal=terminal), stream


def test_off_a_terminal_each_step_is_a_plain_line():
    """Catches the live display (cursor moves, spinners) written into CI's log, or the plain
    lines a log reader greps (what is built, each build step, how long it took) lost."""
    steps, stream = _steps(terminal=False)
    with steps.step("building chaos-harness/shop:local-1 (the shop)", done="shop built in {elapsed:.1f}s") as detail:
        detail("Step 1/2 : FROM base")
        steps.say("pulled something")
    assert stream.getvalue().splitlines() == ["[images] building chaos-harness/shop:local-1 (the shop)",
                                              "[images]   Step 1/2 : FROM base", "[images] pulled something",
                                              "[images] shop built in 0.0s"]


def test_on_a_terminal_the_display_names_what_is_built_and_its_current_step(monkeypatch):
    """Catches a display that does not say what is being built (a bare spinner), drops the
    build's current step, or still prints the plain lines beside it."""
    monkeypatch.setenv("COLUMNS", "200")  # the width of the terminal rich draws for
    steps, stream = _steps(terminal=True)
    with steps.step("building chaos-harness/shop:local-1 (the shop)", done="shop built in {elapsed:.1f}s") as detail:
        detail("Step 2/9 : RUN pip install [wheels]")
        with steps.step("making the Debian bookworm base"):  # nested: one display for both
            steps.say("pulled something")
    out = stream.getvalue()
    assert "building chaos-harness/shop:local-1 (the shop)" in out and "making the Debian bookworm base" in out
    assert (
        "Step 2/9 : RUN pip install [wheels]" in out and "shop built in" in out and "[images] pulled something" in out
    )
    assert "[images] building" not in out and "\x1b[" in out
    assert steps._display is None  # the display ended with the last step


def test_a_failed_step_ends_the_display_and_says_no_closing_line():
    """Catches a failing build that leaves the display running (redrawing over the error) or
    reports the step as done."""
    for terminal in (False, True):
        steps, stream = _steps(terminal)
        with pytest.raises(RuntimeError), steps.step("building x", done="x built in {elapsed:.1f}s"):
            raise RuntimeError("build failed")
        assert steps._display is None and "x built in" not in stream.getvalue()


def test_build_output_is_shown_as_text_on_the_display(monkeypatch):
    """Catches a build's output handed to rich as markup (`[wheels]` vanishes, `[/x]` raises)
    or its control characters passed to the terminal."""
    monkeypatch.setenv("COLUMNS", "200")
    steps, stream = _steps(terminal=True)
    with steps.step("building x") as detail:
        detail("Step 1/1 : RUN echo [/oops] \x1b[2J")
    assert "[/oops] \\x1b[2J" in stream.getvalue() and "\x1b[2J" not in stream.getvalue()


class FakeEngine:
    """Has the Debian base, lacks every other image; a build streams two Dockerfile steps."""

    def __init__(self) -> None:
        self.images = SimpleNamespace(get=self._get)
        self.api = SimpleNamespace(build=lambda **kw: iter([{"stream": "Step 1/2 : FROM base\n"},
                                                            {"stream": "Step 2/2 : RUN true\n"}]))

    @staticmethod
    def _get(ref: str) -> object:
        if ref.startswith("chaos-harness/debian:"):
            return object()
        raise docker.errors.ImageNotFound(ref)


def test_a_local_build_reports_what_it_builds_each_step_and_its_time(monkeypatch):
    """Catches a local image build that no longer reports through the steps (a long silent
    `make setup`), or loses its Dockerfile steps or its closing line."""
    steps, stream = _steps(terminal=False)
    monkeypatch.setattr(images, "STEPS", steps)
    tag = images.Builder(FakeEngine(), mode="local").image("python")
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"[images] building {tag} (Debian python3)"
    assert lines[1:3] == ["[images]   Step 1/2 : FROM base", "[images]   Step 2/2 : RUN true"]
    assert lines[3].startswith("[images] python built in ") and len(lines) == 4
