"""Speed of the D2A metric suite against paragraph2actions 1.5.0 on the same 10,000 pairs.

The pairs are the deterministic perturbations of the shared Paragraph2Actions references that the tests
use (``tests/p2a_cases.py``). ChemActor's suite (``action_metrics``: every value, the action-type scores
included) is timed in this process on one core; paragraph2actions runs in its own virtual environment
(see ``tests/p2a_cases.py`` for how to make one) as a subprocess, each of its functions timed once, and
its values are compared with ours.

    .venv/bin/python benchmarks/bench_metrics.py [--pairs 10000] [--p2a-python /tmp/p2a/bin/python]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from _results import machine_line, write_section  # noqa: E402
from p2a_cases import THRESHOLDS, paragraph2actions_values, perturbed_pairs, reference_actions  # noqa: E402

from chemactor.scoring.action_metrics import (  # noqa: E402
    action_metrics,
    action_type_metrics,
    corpus_bleus,
    is_valid,
    levenshtein_similarities,
)

WHOLE = "**whole suite** (`action_metrics`)"


def _seconds(function, repeats: int) -> tuple[float, float]:
    """Median wall and CPU time of ``repeats`` calls: the machine is shared, and CPU time and the median
    resist the neighbours."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--p2a-python", default="/tmp/p2a/bin/python")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    machine = machine_line()

    predictions, references = perturbed_pairs(reference_actions(args.data_dir), count=args.pairs, seed=3)
    ours = action_metrics(predictions, references)
    parts = {
        "Levenshtein similarities (once, shared by mean and partial accuracies)": lambda: levenshtein_similarities(
            predictions, references
        ),
        "modified + original BLEU": lambda: corpus_bleus(predictions, references),
        "validity (parse every prediction)": lambda: [
            is_valid(p, r) for p, r in zip(predictions, references, strict=True)
        ],
        "action-type precision/recall/F1 and sequence accuracy": lambda: action_type_metrics(predictions, references),
        WHOLE: lambda: action_metrics(predictions, references),
    }
    timings = {name: _seconds(function, args.repeats) for name, function in parts.items()}

    lines = [
        f"D2A metric suite on {args.pairs:,} prediction/reference pairs (perturbed Paragraph2Actions references, "
        f"mean reference length {statistics.mean(map(len, references)):.0f} characters).",
        "",
        f"Machine: {machine}. Pinned to one core; times are the median of {args.repeats} runs.",
        "",
        "Command: `.venv/bin/python benchmarks/bench_metrics.py` (paragraph2actions 1.5.0 in `/tmp/p2a`, "
        "see `tests/p2a_cases.py`).",
        "",
    ]
    whole_wall, whole_cpu = timings[WHOLE]
    if Path(args.p2a_python).exists():
        reference = paragraph2actions_values(args.p2a_python, predictions, references, THRESHOLDS)
        values = reference["values"]
        p2a_wall, p2a_cpu = sum(reference["seconds"].values()), sum(reference["cpu_seconds"].values())
        lines += [
            "| paragraph2actions 1.5.0 function | wall (s) | CPU (s) | its value | ChemActor's | difference |",
            "|---|---:|---:|---:|---:|---:|",
            *(
                f"| `{name}` | {reference['seconds'][name]:.2f} | {reference['cpu_seconds'][name]:.2f} "
                f"| {value:.6f} | {ours[name]:.6f} | {abs(value - ours[name]):.1e} |"
                for name, value in values.items()
            ),
            f"| **all of the above** | **{p2a_wall:.1f}** | **{p2a_cpu:.1f}** | | | |",
            "",
        ]
        valid = [is_valid(p, r) for p, r in zip(predictions, references, strict=True)]
        only_ours = sum(a and not b for a, b in zip(valid, reference["parses"], strict=True))
        only_theirs = sum(b and not a for a, b in zip(valid, reference["parses"], strict=True))
        lines += [
            f"Validity follows each side's parser of the grammar: of the {args.pairs:,} (often corrupted) "
            f"predictions, {only_ours} parse only with ChemActor's (`chemactor.actions`) and {only_theirs} only "
            "with paragraph2actions' `ReadableConverter`.",
            "",
        ]
    else:
        p2a_wall = p2a_cpu = None
        lines += [f"paragraph2actions not found at {args.p2a_python}: no comparison run.", ""]
    lines += ["| ChemActor (`chemactor.scoring.action_metrics`) | wall (s) | CPU (s) |", "|---|---:|---:|"]
    lines += [f"| {name} | {wall:.3f} | {cpu:.3f} |" for name, (wall, cpu) in timings.items()]
    if p2a_wall is not None:
        lines += [
            "",
            f"Whole suite: {whole_cpu:.2f} s CPU ({whole_wall:.2f} s wall) against {p2a_cpu:.1f} s CPU "
            f"({p2a_wall:.1f} s wall) for paragraph2actions' functions, {p2a_cpu / whole_cpu:.0f}x less CPU time.",
        ]
    lines += ["", f"Load average at the end: {os.getloadavg()[0]:.1f}."]
    markdown = "## D2A metrics: speed against paragraph2actions\n\n" + "\n".join(lines)
    write_section("bench_metrics", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
