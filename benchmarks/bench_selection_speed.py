"""Scoring speed and peak memory of DivergenceSelector.score vs DSIR, at 10k, 100k and 1M rows.

Rows are resampled (with replacement) from the noisy pool of ``benchmarks/noisy_pool.py`` and saved
to disk as Arrow, so both methods read the same rows from files. Each measurement runs in a fresh
process, whose anonymous memory (RSS without file-backed pages) is sampled every 50 ms, alone and summed
with its workers. (``ru_maxrss`` would be wrong here: Linux carries the parent's high-water mark over
``fork`` and ``exec``, and the parent has just written the pool.)
DivergenceSelector's time is ``fit`` (on the 136 reference pairs) plus ``score`` (the batched
``datasets.map`` and the deduplication pass); DSIR's is ``fit_importance_estimator`` (on the reference
and on the pool) plus ``compute_importance_weights``, on "description actions" as text.

    .venv/bin/python -m benchmarks.bench_selection_speed [--sizes 10000 100000 1000000] [--data-dir ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from benchmarks._results import RESULTS, machine_line, write_section


def prepare(data_dir: Path, size: int, workdir: Path) -> None:
    """Write the pool (Arrow and JSONL) and the reference (Arrow and JSONL) of ``size`` rows into ``workdir``."""
    from benchmarks.noisy_pool import build_noisy_pool

    noisy = build_noisy_pool(data_dir)
    pool = noisy.pool.select_columns(["description", "actions"])
    rows = np.random.default_rng(0).integers(0, len(pool), size=size)
    resampled = pool.select(rows).flatten_indices()
    resampled.save_to_disk(str(workdir / "pool"))
    noisy.reference.select_columns(["description", "actions"]).save_to_disk(str(workdir / "reference"))
    for name, dataset in (("pool", resampled), ("reference", noisy.reference)):
        with (workdir / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for description, actions in zip(dataset["description"], dataset["actions"], strict=True):
                handle.write(json.dumps({"text": f"{description} {actions}"}) + "\n")


class PeakMemory(threading.Thread):
    """Samples, every 50 ms, the anonymous memory (RSS without file-backed pages) of this process alone
    and summed with its children (map or joblib workers).

    RSS alone counts the pages of memory-mapped Arrow files that a scan has touched: the kernel drops
    them under pressure, so they say nothing about the memory a method needs.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.main, self.total, self.running = 0, 0, True

    def run(self) -> None:
        me = psutil.Process()
        while self.running:
            info = me.memory_info()
            main = info.rss - info.shared
            total = main
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    info = child.memory_info()
                    total += info.rss - info.shared
            self.main, self.total = max(self.main, main), max(self.total, total)
            time.sleep(0.05)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (map or joblib workers): unlike wall time it
    hardly depends on what else runs on a shared machine."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def measure(method: str, workdir: Path, num_proc: int) -> dict[str, float]:
    """Run one method in this (fresh) process and return seconds and peak memory in MiB."""
    sampler = PeakMemory()
    sampler.start()
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    if method == "selector":
        import datasets

        from chemactor.selection import DivergenceSelector

        datasets.disable_progress_bars()
        selector = DivergenceSelector().fit(datasets.load_from_disk(str(workdir / "reference")))
        pool = datasets.load_from_disk(str(workdir / "pool"))
        selector.score(
            pool,
            num_proc=num_proc if num_proc > 1 else None,
            cache_file_name=str(workdir / f"scored-{num_proc}.arrow"),
            load_from_cache_file=False,  # every configuration computes its scores itself
        )
    else:
        from data_selection import HashedNgramDSIR

        dsir = HashedNgramDSIR(
            [str(workdir / "pool.jsonl")],
            [str(workdir / "reference.jsonl")],
            cache_dir=str(workdir / f"dsir{num_proc}"),
            num_proc=num_proc,
            min_example_length=0,
        )
        dsir.fit_importance_estimator(num_tokens_to_fit="all")
        dsir.compute_importance_weights()
    seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
    sampler.running = False
    sampler.join()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "anonymous_mib": sampler.main / 2**20,
        "all_anonymous_mib": sampler.total / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("CHEMACTOR_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--data-dir", type=Path, default=Path(default_data))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--num-procs", type=int, nargs="+", default=[1, 2], help="num_proc values to measure.")
    parser.add_argument("--methods", nargs="+", choices=("selector", "DSIR"), default=["selector", "DSIR"])
    parser.add_argument(
        "--append", action="store_true", help="Keep the rows already in the section (a run of other sizes or methods)."
    )
    parser.add_argument("--max-seconds", type=float, default=900, help="Skip a run expected to take longer.")
    parser.add_argument("--measure", nargs=3, metavar=("METHOD", "WORKDIR", "NUM_PROC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        method, workdir, num_proc = args.measure
        print(json.dumps(measure(method, Path(workdir), int(num_proc))))
        return

    machine = machine_line()
    if args.append:
        machine += "; the table merges rows of several runs (`--append`), each under the load of its own time"
    lines = [
        "| rows | method | num_proc | seconds | rows/s | CPU seconds | rows per CPU-second "
        "| peak anonymous, main (MiB) | peak anonymous, all processes (MiB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    seconds_per_row: dict[tuple[str, int], float] = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as workdir:
            prepare(args.data_dir, size, Path(workdir))
            for method in args.methods:
                name = "DivergenceSelector" if method == "selector" else "DSIR (HashedNgramDSIR)"
                for num_proc in args.num_procs:
                    estimate = seconds_per_row.get((method, num_proc), 0.0) * size
                    if estimate > args.max_seconds:
                        lines.append(
                            f"| {size:,} | {name} | {num_proc} | not run: ~{estimate:,.0f} s expected from the "
                            f"smaller size, over the {args.max_seconds:,.0f} s limit | | | | | |"
                        )
                    else:
                        command = [sys.executable, "-m", "benchmarks.bench_selection_speed", "--measure"]
                        command += [method, workdir, str(num_proc)]
                        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                        result = json.loads(output.strip().splitlines()[-1])
                        seconds_per_row[method, num_proc] = result["seconds"] / size
                        lines.append(
                            f"| {size:,} | {name} | {num_proc} | {result['seconds']:.1f} | "
                            f"{size / result['seconds']:,.0f} | {result['cpu_seconds']:.1f} | "
                            f"{size / result['cpu_seconds']:,.0f} | "
                            f"{result['anonymous_mib']:.0f} | {result['all_anonymous_mib']:.0f} |"
                        )
                    print(lines[-1], flush=True)
                    # written after every measurement, so a run stopped early still leaves what it measured
                    write_section("selection-speed", report(machine, _merged(lines) if args.append else lines))


def _merged(lines: list[str]) -> list[str]:
    """This run's table with the rows of other sizes, methods or num_proc already in RESULTS.md (``--append``),
    read again at every write so that runs of different sizes can go on side by side."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    section = text.partition("<!-- BEGIN selection-speed -->")[2].partition("<!-- END selection-speed -->")[0]
    header, own = lines[:2], lines[2:]

    def key(line: str) -> tuple[int, str, int]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        return int(cells[0].replace(",", "")), cells[1], int(cells[2])

    rows = {key(line): line for line in section.splitlines() if line.startswith("| ") and line[2:3].isdigit()}
    rows.update({key(line): line for line in own})
    return header + [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1] != "DivergenceSelector", k[2]))]


def ratios(lines: list[str]) -> str:
    """DivergenceSelector's rows per CPU-second over DSIR's, with ``num_proc=1``, at every size that has both."""
    rates: dict[tuple[int, str], float] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[2] == "1" and cells[6]:
            rates[int(cells[0].replace(",", "")), cells[1].split()[0]] = float(cells[6].replace(",", ""))
    sizes = sorted({size for size, _ in rates})
    found = [
        f"{rates[size, 'DivergenceSelector'] / rates[size, 'DSIR']:.1f}x at {size:,} rows"
        for size in sizes
        if (size, "DivergenceSelector") in rates and (size, "DSIR") in rates
    ]
    return "; ".join(found) or "no size with both methods"


def report(machine: str, lines: list[str]) -> str:
    return f"""## Selection speed (`benchmarks/bench_selection_speed.py`)

**DivergenceSelector over DSIR, rows per CPU-second with `num_proc=1`: {ratios(lines)}** (target >= 3x).

{machine}; load average {os.getloadavg()[0]:.1f} at the last measurement. Any other load on the 2 cores
lowers the rates (and the gain from `num_proc=2`), so under load they are lower bounds; CPU seconds (the
process and the workers it waited for) depend much less on the load, and rows per CPU-second compare the
methods fairly when the load changed between measurements, for `num_proc=1` (DSIR's `num_proc=2` workers are
never waited for, so its CPU column undercounts there). Memory is the peak
anonymous memory (RSS without file-backed pages, so without the reclaimable pages of memory-mapped Arrow files
a scan touches), sampled every 50 ms, of the main process and summed over it and its workers (forked workers'
copy-on-write pages count once per process).

Rows resampled from the noisy pool, read from Arrow (selector) or JSONL (DSIR). Selector time = fit on 136
reference pairs + `score` (all views, `datasets.map`, seed-copy matching and deduplication); DSIR time = fitting its
reference and pool n-gram models + computing importance weights. Each configuration runs in a fresh process, and
its time includes importing its libraries and fitting, which weigh most at the smallest size.

{chr(10).join(lines)}
"""


if __name__ == "__main__":
    main()
