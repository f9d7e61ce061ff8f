"""Writes one benchmark's table into its own section of ``benchmarks/RESULTS.md``.

Every benchmark owns a section delimited by HTML comments, so benchmarks can be rerun one at a time
(or concurrently) without clobbering each other's results.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is written by the script it names; rerun the script to refresh it.\n"


def machine_line() -> str:
    """One line naming the machine, so a number is never read without its context."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f} at start, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section ``name`` of the results file with ``markdown``."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = f"{head}{block}{tail}"
    else:
        text = f"{text.rstrip()}\n\n{block}"
    path.write_text(text, encoding="utf-8")


def merged_rows(name: str, rows: dict[str, str], path: Path = RESULTS) -> list[str]:
    """``rows`` (table lines keyed by their first cell) with the rows of other keys already in the table of
    section ``name``, sorted by that first cell read as a number: a long configuration can run on its own
    and join the table of a shorter run."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    section = text.partition(f"<!-- BEGIN {name} -->")[2].partition(f"<!-- END {name} -->")[0]
    kept = {_first_cell(line): line for line in section.splitlines() if line.startswith("| ") and line[2:3].isdigit()}
    kept.update(rows)
    return [kept[key] for key in sorted(kept, key=lambda key: float(key.replace(",", "")))]


def _first_cell(line: str) -> str:
    return line.strip().strip("|").split("|")[0].strip()
