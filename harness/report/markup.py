"""The few HTML and SVG pieces every drawn report part uses: escaped text, a table, an SVG
label. Kept apart so the parts (the scenario sections, the exploration) share them without
importing one another."""

from __future__ import annotations

import html
import json
from typing import Any


def escaped(value: Any, limit: int = 400) -> str:
    """Escaped text; non-strings as compact JSON, cut at limit."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]], cls: str = "") -> str:
    """Cells are already escaped HTML; an empty header leaves the head out."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    return f'<table class="{cls}">{thead}<tbody>{body}</tbody></table>'


def svg_text(x: float, y: float, text: str, anchor: str = "start", size: int = 11, color: str = "#333") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}">'
            f"{html.escape(text)}</text>")
