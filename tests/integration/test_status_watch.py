"""`chaos status --watch` on a real terminal (tmux): the live table, redrawn in place as the
faults on disk change. No stack, and no engine to find one on (whatever other sessions run on
the shared daemon stays out of it): status shows the faults of its state directory."""

from __future__ import annotations

import shutil

import pytest

from harness import state
from harness.ownership import owner_token
from tests.integration.test_gameday import CHAOS, Terminal

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (`make setup` installs it)")


def test_watch_on_a_terminal_redraws_one_table_in_place(tmp_path):
    """Catches --watch on a terminal appending a new table per redraw (the screen scrolls, one
    `chaos status` headline per interval), a fault that appears during the watch never shown,
    or Ctrl-C leaving the watch with an error instead of exit 0."""
    term = Terminal("watch")
    try:
        term.type(
            f"CHAOS_STATE_DIR={tmp_path} DOCKER_HOST=unix:///nonexistent/docker.sock "
            f"{CHAOS} status --watch --interval 0.2 --watch-for 120; "
            "echo watch-ended-$?"
        )
        term.wait_for(r"ACTIVE FAULTS: none")
        record = state.Record(id="network.down-postgres-watch", run_id="r-watch", fault="network.down",
                                 target="postgres", params={}, owner=owner_token(), undo={})
        state.save(record, tmp_path)
        screen = term.wait_for(r"ACTIVE FAULTS \(1\)")
        assert "network.down-postgres-watch" in screen and "RECORD" in screen
        assert screen.count("chaos status  ") == 1, screen  # one table, drawn over the last
        term.interrupt()
        term.wait_for(r"watch-ended-0")
    finally:
        term.close()
