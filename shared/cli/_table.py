"""People's tables for the history commands: one line per row, fit to the terminal.

Fixed columns (times, phases, ids) keep their width; the texts (app, version, reason) share what
is left and end in an ellipsis. `--wide` prints every value whole. Stored text is escaped.
"""

from __future__ import annotations

from typing import Any, Callable

from shared.cli._text import printable, short_digest

PHASE_STYLE = {"succeeded": "green", "failed": "red", "rolled_back": "yellow", "skipped": "dim",
               "superseded": "dim", "ignored": "dim", "rejected": "red"}
FLEXIBLE = frozenset({"app", "version", "reason", "message", "image", "live", "live_image", "pushed_by"})
MIN_FLEX = 6  # a text column never narrower than this, even on a very small terminal


def table(rows: list[dict[str, Any]], columns: list[tuple], title: str, wide: bool) -> None:
    """`columns`: (row key, header, shape or None). Prints "(nothing)" for no rows."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if not rows:
        print("(nothing)")
        return
    cells = [[_shown(row, key, shape, wide) for key, _, shape in columns] for row in rows]
    natural = [max([len(header)] + [len(row[i]) for row in cells]) for i, (_, header, _) in enumerate(columns)]
    console = Console(soft_wrap=False, highlight=False)
    if wide:  # every value whole, one line per row: as wide as it takes (a pager or the terminal wraps)
        console = Console(soft_wrap=False, highlight=False,
                          width=max(console.width, sum(natural) + 3 * len(columns)))
    widths = natural if wide else _fit(columns, natural, console.width)
    table = Table(title=title or None, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
    for (key, header, _), width in zip(columns, widths):
        table.add_column(header, no_wrap=True, overflow="ellipsis", width=width)
    for row in cells:
        styled = []
        for (key, _, _), value in zip(columns, row):
            style = PHASE_STYLE.get(value, "cyan") if key in ("phase", "last_phase", "outcome") and value else None
            styled.append(f"[{style}]{escape(value)}[/{style}]" if style else escape(value))
        table.add_row(*styled)
    console.print(table)


def _shown(row: dict[str, Any], key: str, shape: Callable[[str], str] | None, wide: bool) -> str:
    raw = row.get(key)
    value = shape(raw) if shape and raw is not None else ("" if raw is None else str(raw))
    return printable(short_digest(value) if key == "digest" and not wide else value)


def _fit(columns: list[tuple], natural: list[int], width: int) -> list[int]:
    """Column widths for a terminal `width` wide: fixed columns as wide as their longest cell,
    flexible ones water-filled from the rest (the shortest is served first, so the reason, usually
    the longest, gets what remains)."""
    fitted = list(natural)
    flexible = [i for i, (key, _, _) in enumerate(columns) if key in FLEXIBLE]
    left = width - 3 * (len(columns) - 1) - sum(n for i, n in enumerate(natural) if i not in flexible)
    for done, i in enumerate(sorted(flexible, key=lambda i: natural[i])):
        share = left // (len(flexible) - done)
        fitted[i] = max(MIN_FLEX, min(natural[i], share))
        left -= fitted[i]
    return fitted
