"""What reading and writing records costs: ``read_records`` against ``Dataset.from_json``, and ``AppendLog``.

``read_records`` validates every row against the record schema and checks ids for repeats; the question is
what that costs beside datasets' own Arrow JSON reader, which checks nothing. ``AppendLog`` writes one whole
line per ``os.write`` and fsyncs at most once a second; the table shows rows per second with that default
and with an fsync after every row (``fsync_interval=0``), the price of losing nothing at all.

    python -m benchmarks.bench_records            # 10k and 100k rows
    python -m benchmarks.bench_records --rows 1000000 --write
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import datasets

from benchmarks._results import machine_line, write_section
from chemactor.builders import read_records
from chemactor.data import AppendLog


def _row(index: int) -> dict[str, str]:
    meta = {"generator": "endpoint", "prompt_version": "v1", "crosscheck": {"verdict": "pass", "reasons": []}}
    return {
        "id": f"generated-{index}/0",
        "source": "generated",
        "reaction_smiles": "CC(=O)O.OCC>>CC(=O)OCC",
        "description": f"Acetic acid ({index % 90 + 10} mmol) in ethanol was stirred for 2 h at 25 °C and dried.",
        "actions": "MAKESOLUTION with acetic acid and ethanol; STIR for 2 h at 25 °C; CONCENTRATE.",
        "split": "train",
        "meta": json.dumps(meta),
    }


def _seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(rows: int, folder: Path) -> list[tuple[str, int, float]]:
    """``(what, rows, seconds)`` for each reader and writer on ``rows`` generated records."""
    path = folder / f"pool-{rows}.jsonl"
    path.write_text("".join(json.dumps(_row(index)) + "\n" for index in range(rows)), encoding="utf-8")
    cache = str(folder / "cache")
    results = [
        (
            "Dataset.from_json (no checks)",
            rows,
            _seconds(lambda: datasets.Dataset.from_json(str(path), cache_dir=str(cache))),
        ),
        ("read_records (schema + ids)", rows, _seconds(lambda: read_records(path))),
    ]
    for label, interval in (("AppendLog, fsync each second", 1.0), ("AppendLog, fsync every row", 0.0)):
        count = rows if interval else min(rows, 2_000)
        target = folder / f"log-{interval}.jsonl"

        def append(target: Path = target, interval: float = interval, count: int = count) -> None:
            with AppendLog(target, fsync_interval=interval) as log:
                for index in range(count):
                    log.append(_row(index))

        results.append((label, count, _seconds(append)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--write", action="store_true", help="Update this benchmark's section of RESULTS.md.")
    options = parser.parse_args()
    machine = machine_line()
    datasets.disable_progress_bars()
    lines = ["| what | rows | seconds | rows/s |", "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="chemactor-bench-records-") as folder:
        for rows in options.rows:
            for what, count, seconds in measure(rows, Path(folder)):
                lines.append(f"| {what} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} |")
                print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(f"\n{machine}\n{table}")
    if options.write:
        write_section(
            "bench_records",
            f"## Records: reading and appending (`benchmarks/bench_records.py`)\n\n{machine}.\n\n{table}\n\n"
            "`read_records` parses and validates every row in Python (the `meta` JSON included) and keeps a map of "
            "ids; the Arrow JSON reader checks nothing. The AppendLog rows with an fsync per row are capped at 2,000.",
        )


if __name__ == "__main__":
    main()
