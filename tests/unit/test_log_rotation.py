"""node-A's log rotation (shop.log_rotation) and the flood the disk.log_flood fault starts: pure
file logic in a temporary directory, read from the shop's file (stdlib only)."""

import gzip
import importlib.util
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.faults import CATALOG, check
from harness.faults.disk import LogFlood
from harness.polling import wait_for

SHOP = Path(__file__).resolve().parents[2] / "services" / "shop"


def _shop_module(name: str):
    spec = importlib.util.spec_from_file_location(f"shop_{name}", SHOP / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rotation = _shop_module("log_rotation")
MAX = 4096


def _flood(path: Path, rotating: bool, total: int, keep: int = 3):
    handler = rotation.NodeLog(path, rotating=lambda: rotating, max_bytes=MAX, keep=keep)
    flood = rotation.Flood("abcdef12", handler, rate_bytes_s=100 * 1024 * 1024, total_bytes=total,
                           chunk_bytes=512).start()
    done, _ = wait_for(lambda: flood.done, 10, 0.01)
    flood.stop()
    assert done, "the flood did not finish its total"
    return flood


def test_a_rotated_log_is_compressed_and_only_keep_of_them_are_kept(tmp_path):
    """Catches rotation without the compressing rotator (plain `.1` files as big as the log),
    a kept count that grows with every rotation, and a live log that outgrows its size."""
    log = tmp_path / "logs" / "node.log"
    _flood(log, rotating=True, total=40 * MAX, keep=3)
    names = sorted(p.name for p in log.parent.iterdir())
    assert names == ["node.log", "node.log.1.gz", "node.log.2.gz", "node.log.3.gz"]
    assert log.stat().st_size <= MAX
    for n in (1, 2, 3):
        text = gzip.decompress((log.parent / f"node.log.{n}.gz").read_bytes()).decode()
        assert '"event": "chaos_log_flood"' in text and len(text) <= MAX
        assert (log.parent / f"node.log.{n}.gz").stat().st_size < len(text)


def test_with_rotation_off_the_log_grows_by_the_whole_flood(tmp_path):
    """Catches the switch not being asked (rotation whatever log_rotation says): the matrix could
    then never show the disk filling with the protection off. And a flood that writes more or
    less than its total."""
    log = tmp_path / "node.log"
    flood = _flood(log, rotating=False, total=10 * MAX + 7)
    assert [p.name for p in tmp_path.iterdir()] == ["node.log"]
    assert log.stat().st_size == 10 * MAX + 7 == flood.written
    assert flood.describe()["errors"] == 0


def test_a_stopped_flood_writes_no_more(tmp_path):
    """Catches stop() that leaves the writer thread running (a heal that does not stop the growth)."""
    handler = rotation.NodeLog(tmp_path / "node.log", rotating=lambda: False, max_bytes=MAX)
    flood = rotation.Flood("abcdef12", handler, rate_bytes_s=64 * 1024, total_bytes=1024 * 1024 * 1024).start()
    flood.stop()
    written = flood.written
    assert flood.done and written < 1024 * 1024 * 1024
    assert (tmp_path / "node.log").stat().st_size == written


def test_a_write_error_is_counted_not_raised(tmp_path):
    """Catches a full disk (or any write error) raised into the service or printed per record."""
    handler = rotation.NodeLog(tmp_path / "node.log", rotating=lambda: True, max_bytes=MAX)
    handler.close()
    (tmp_path / "node.log").unlink()
    (tmp_path / "node.log").mkdir()  # the handler can't open a directory to write
    flood = rotation.Flood("abcdef12", handler, rate_bytes_s=100 * 1024 * 1024, total_bytes=3).start()
    wait_for(lambda: flood.done, 5, 0.01)
    assert flood.describe()["errors"] == 1 and flood.describe()["last_error"]


def test_log_flood_records_its_id_and_refuses_other_names():
    """Catches a record without the flood's id (the reaper could not find its files) or one
    that names a path: the heal deletes `chaos-flood-<id>.log*`, so the id must be one."""
    fault = check("disk.log_flood", "api_gateway", total_mib=2, rate_mib_s=1)
    state = fault.undo_state()
    assert state == {"service": "api_gateway", "flood": fault.flood_id}
    assert CATALOG["disk.log_flood"].recordable()
    with pytest.raises(HarnessError, match="refused to delete the log flood"):
        LogFlood.undo_from({"service": "api_gateway", "flood": "../receipts"}, None)  # type: ignore[arg-type]
