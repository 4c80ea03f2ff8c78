"""Plain-text tables for terminals: columns padded to their widest cell, no colour."""

from __future__ import annotations

from collections.abc import Sequence

GAP = "  "


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The header line and one line per row; trailing blanks trimmed."""
    widths = [
        max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)
    ]
    return [
        GAP.join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    ]


def excerpt(text: str | None, width: int) -> str:
    """`text` on one line (whitespace collapsed), cut to `width` characters with "..."."""
    if not text:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
