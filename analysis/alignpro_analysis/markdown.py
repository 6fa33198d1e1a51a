"""Small helpers to write Markdown tables and texts."""

from __future__ import annotations

import math
import re

_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def text(value, limit: int = 240) -> str:
    """A model's text on one line, shortened, with Markdown's special characters escaped."""
    value = str(value).replace("\r", " ").replace("\t", " ").replace("\n", " ⏎ ")
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return _SPECIAL.sub(r"\\\1", value)


def number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(value):
        return "–"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** (-digits)):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def interval(value, low, high, digits: int = 3) -> str:
    return f"{number(value, digits)} [{number(low, digits)}, {number(high, digits)}]"


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table; align is one letter per column, l or r."""
    align = align or "l" * len(header)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)
