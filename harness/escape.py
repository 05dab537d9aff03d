"""Text from the system (alert text, log lines, fault parameters, error messages) made safe
for where it is written: the incident Markdown and the terminal.

What a service logs or an alert says is data, not markup: written raw, an alert text such as
``# FIXED [click](http://x) <img src=x>`` would add a heading, a link and HTML to the incident
record, and an ESC in a log line would move the cursor or recolour the terminal of whoever runs
`chaos status`. One function per destination, used everywhere such text is written.
"""

from __future__ import annotations

import re

# Structure in CommonMark comes from these; each is backslash-escaped (a rendered backslash
# escape is the character itself). Intraword underscores (order_id) make no emphasis, so
# only the others are escaped and identifiers stay readable in the raw file.
MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]<>|#!&~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Line breaks would start a new block (a heading, a list, a table row): one line, always.
LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
# C0 and C1 controls (ESC, CSI, BEL, backspace, CR ...) and the bidirectional overrides that
# reorder what a terminal shows; tab and newline are controls too when they come from the system.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(found: re.Match[str]) -> str:
    return found.group(0).encode("unicode_escape").decode("ascii")


def markdown(value: object) -> str:
    """`value` as inert Markdown text on one line: no heading, list, link, image, HTML, code
    span or table cell can come out of it, and controls are shown, not sent."""
    text = LINE_BREAKS.sub(" ", str(value))
    return MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), CONTROL.sub(_visible, text))


def terminal(value: object) -> str:
    """`value` with every control character shown as its escape (``\\x1b``, ``\\n``), so what
    reaches the terminal is only text to read."""
    return CONTROL.sub(_visible, str(value))
