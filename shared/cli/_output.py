"""Machine-readable output shared by the CLI commands: `--json` / `--csv` flags and the CSV writer.

One writer so every command's CSV looks the same: a header row, "\\n" line endings, None as an
empty cell, booleans as JSON spells them (`true`/`false`) so a script reading either format
compares the same strings. Control characters other than newline and tab are spelled out
(`\\x1b`): a CSV is often read in a terminal first.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from shared.cli._text import printable


def add_output_flags(parser: argparse.ArgumentParser, json_help: str,
                     csv_help: str = "CSV with a header row") -> None:
    """`--json` and `--csv`, mutually exclusive (argparse exits 2 when both are given)."""
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help=json_help)
    out.add_argument("--csv", action="store_true", help=csv_help)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # stored text: no terminal escapes (newlines and tabs stay, quoted)
        return printable(value, csv=True)
    return value


def write_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], stream: TextIO | None = None) -> None:
    """A header row of `columns`, then one line per row (missing keys are empty cells)."""
    writer = csv.writer(stream or sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
