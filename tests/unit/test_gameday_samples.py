"""The game day's samples file read back for its report."""

from __future__ import annotations

import json

from harness import gameday
from harness.report.json_report import RAW

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


def test_the_report_copies_the_recorded_lines_only_when_they_are_its_own_encoding(tmp_path):
    """Catches the report copying the samples file's lines when they are not what it would
    write for those samples (another writer's separators, two samples on a line): the per-
    scenario file would then differ from the samples it holds, or hold a line per two."""
    from harness.report import json_report

    seen = [{"ts": 1.5 + n, "score": 95, "services": {"api_gateway": 95}} for n in range(4)]
    lines = [json.dumps(s) for s in seen]
    own = "\n".join(lines) + "\n"
    copied = json_report.EncodedItems.of_lines(own, seen)
    assert isinstance(copied, json_report.EncodedItems) and copied == seen and copied.lines == own.rstrip("\n")
    other = [json.dumps(s, separators=(",", ":")) for s in seen]
    for text in ("\n".join(other[:1] + lines[1:]), "\n".join(lines[:-1] + other[-1:]),  # another writer's
                 "\n".join([lines[0], lines[1] + ", " + lines[2], lines[3]])):  # two on a line
        assert type(json_report.EncodedItems.of_lines(text, seen)) is list
    path = tmp_path / "s.json"
    json_report._dump(path, {RAW: {"samples": copied}})
    assert json.loads(path.read_text(encoding="utf-8"))[RAW]["samples"] == seen
    assert path.read_text(encoding="utf-8").count(json.dumps(seen[1])) == 1


def test_a_recorded_day_read_back_keeps_its_lines_for_the_report(tmp_path):
    """Catches samples() no longer handing the report its lines (the day encoded twice), or
    handing them on with a line cut short (they would no longer be the samples)."""
    from harness.report import json_report

    lines = [json.dumps({"ts": float(n), "score": 95}) for n in range(3)]
    _write(tmp_path, "\n".join(lines) + "\n")
    assert isinstance(gameday.samples(RUN_ID, tmp_path), json_report.EncodedItems)
    cut = tmp_path / "cut"
    _write(cut, "\n".join(lines) + "\n" + lines[0][:5] + "\n")
    assert type(gameday.samples(RUN_ID, cut)) is list
