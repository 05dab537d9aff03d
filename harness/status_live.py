"""`chaos status --watch` on a terminal: the snapshot as a live table, redrawn in place.

Only a terminal gets it: cmd_status keeps the plain render for pipes, files and tests, and
imports this module (and with it rich) only for a watch on a terminal, so a one-shot
`chaos status` stays as small as it was. The rows are status.py's (headline, service_rows,
fault_rows, alert_lines, notice_lines), so the two views never differ in what they list, only
in layout; this one adds each service's endpoint. Text from the system (alerts, errors, fault
parameters) goes in as plain Text, escaped: neither rich markup nor control characters in it
reach the terminal.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness import status
from harness.escape import terminal

LEVEL_STYLES = {"green": "green", "yellow": "yellow", "orange": "dark_orange", "red": "bold red"}
SERVICE_COLUMNS = ("SERVICE", "STATE", "HEALTH", "LEVEL", "ENDPOINT")


def _text(value: Any, style: str = "") -> Text:
    return Text(terminal(str(value)), style=style)


def _grid(columns: tuple[str, ...], rows: Sequence[tuple[Text, ...]]) -> Table:
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    return grid


def table(document: dict[str, Any]) -> Group:
    """The snapshot as rich renderables: headline, one row per service (state, health, level,
    endpoint), every other endpoint, the active faults, the recent alerts and notices."""
    parts: list[Any] = [_text(line, "bold" if n == 0 else "") for n, line in enumerate(status.headline(document))]
    run = document["run"]
    if run is not None:
        endpoints = document["endpoints"]
        rows = [(_text(name), _text(state, "" if state == "running" else "yellow"), _text(score),
                 _text(level, LEVEL_STYLES.get(level, "")), _text(endpoints.get(name, "-")))
                for name, state, score, level in status.service_rows(document)]
        parts += [Text(), _grid(SERVICE_COLUMNS, rows)]
        named = {s["name"] for s in document["services"]}
        parts += [_text(f"{what}: {url}") for what, url in endpoints.items() if what not in named]
    faults = status.fault_rows(document)
    parts += [Text(), _text(f"ACTIVE FAULTS ({len(faults)})" if faults else "ACTIVE FAULTS: none", "bold")]
    if faults:
        parts.append(_grid(status.FAULT_COLUMNS, [tuple(_text(cell) for cell in row) for row in faults]))
    if run is not None:
        parts += [Text(), _text("RECENT ALERTS" if document["alerts"] else "RECENT ALERTS: none", "bold")]
        parts += [_text(f"  {line}") for line in status.alert_lines(document)]
        parts += [_text(line, "bold red") for line in status.notice_lines(document)]
    return Group(*parts)


def watch(read: Callable[[], dict[str, Any]], interval_s: float, watch_for_s: float,
          console: Console | None = None) -> int:
    """Shows read()'s snapshot and redraws it in place every interval_s, for watch_for_s at
    most (Ctrl-C ends it sooner: the caller takes the KeyboardInterrupt). The last drawing
    stays on the screen when it ends."""
    deadline = time.monotonic() + watch_for_s
    with Live(table(read()), console=console or Console(), auto_refresh=False) as live:
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(interval_s, left))
            live.update(table(read()), refresh=True)
    return 0
