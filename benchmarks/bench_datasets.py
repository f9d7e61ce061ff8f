"""Build time and size of each seed dataset, and the time to read an export back with ``load_dataset``.

Each source is built from the reference data with ``build_seeds`` (always regenerated), exported as
parquet + card with ``export_dataset``, then loaded with ``datasets.load_dataset(DIR, source)`` into a
fresh cache. Every step is run ``--repeats`` times and the median is reported: the machine is shared.

    .venv/bin/python benchmarks/bench_datasets.py [--data-dir ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import datasets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import machine_line, write_section  # noqa: E402

from chemactor.builders import build_seeds  # noqa: E402
from chemactor.data import SEED_SOURCES  # noqa: E402
from chemactor.hub import export_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    header = machine_line()
    lines = [
        "| source | rows (train/validation/test) | dropped | texts in two splits | build s | export s "
        "| parquet KiB | load_dataset s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for source in SEED_SOURCES:
        build_times, export_times, load_times = [], [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                build = build_seeds(source, args.data_dir)
                build_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                export = export_dataset({source: build.dataset}, Path(folder) / "export")
                export_times.append(time.perf_counter() - start)
                size = sum(path.stat().st_size for path in (export / source).glob("*.parquet"))
                start = time.perf_counter()
                datasets.load_dataset(str(export), source, cache_dir=str(Path(folder) / "cache"))
                load_times.append(time.perf_counter() - start)
        summary = build.summary()
        rows = "/".join(str(summary["rows"][split]) for split in ("train", "validation", "test"))
        dropped = ", ".join(f"{n} {reason}" for reason, n in summary["dropped"].items()) or "0"
        lines.append(
            f"| {source} | {rows} | {dropped} | {summary['cross_split_texts']} "
            f"| {statistics.median(build_times):.2f} | {statistics.median(export_times):.2f} "
            f"| {size / 1024:.0f} | {statistics.median(load_times):.2f} |"
        )
        print(lines[-1], flush=True)
    markdown = "\n".join(
        [
            "## Seed datasets: build, export, load (`benchmarks/bench_datasets.py`)",
            "",
            f"{header}. Median of {args.repeats} runs per step; under load (see the load average) times are",
            "upper bounds. Build = `build_seeds` from the reference data (RDKit canonicalization included);",
            "export = parquet + card; load = `load_dataset(DIR, source)` into an empty cache.",
            "",
            *lines,
        ]
    )
    write_section("datasets", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
