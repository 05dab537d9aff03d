"""The game day's samples file read back for its report."""

from __future__ import annotations

import json

from harness import gameday

RUN_ID = "20270101T000000-be0c00"


def _write(root, text: str) -> None:
    path = gameday.samples_path(RUN_ID, root)
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")


def test_every_sample_of_a_whole_file_is_read_in_order(tmp_path):
    """Catches the one-parse read of the file losing, merging or reordering samples (the last
    line, or the file's final newline, taken for a sample)."""
    seen = [{"ts": 1.0 + n, "score": 95, "error": None if n else "a,\nb"} for n in range(5)]
    _write(tmp_path, "".join(json.dumps(s) + "\n" for s in seen))
    assert gameday.samples(RUN_ID, tmp_path) == seen


def test_a_line_cut_short_or_blank_loses_only_itself(tmp_path):
    """Catches a samples file with a line cut short by a kill, or a blank line, losing the
    whole day (or the good lines around it)."""
    good = [json.dumps({"ts": float(n), "score": 95}) for n in range(3)]
    _write(tmp_path, good[0] + "\n\n" + good[1] + "\n" + good[2][:7] + "\n" + good[2] + "\n")
    assert [s["ts"] for s in gameday.samples(RUN_ID, tmp_path)] == [0.0, 1.0, 2.0]
    assert gameday.samples(RUN_ID, tmp_path / "none") == []
