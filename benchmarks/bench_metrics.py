"""Speed of the D2A metric suite (``action_metrics``) on two sets of 10,000 pairs, against paragraph2actions
1.5.0 and against an earlier revision of the suite.

Pair sets: ``perturbed``, the deterministic perturbations of the 100 Paragraph2Actions references that the
tests use (``tests/p2a_cases.py``; many strings repeat), and ``recombined``, references drawn action by
action from all Paragraph2Actions and Smiles2Actions targets with predictions edited action by action
(``tests/metric_pairs.py``; almost every string distinct, longer). Everything runs pinned to one core; each
time is the median of ``--repeats`` runs, in CPU and wall seconds. ``--before REV`` times the suite of that
git revision on the same pairs in the same process (``git show REV:chemactor/scoring/action_metrics.py``)
and checks that both give the same values. paragraph2actions, when installed in its own virtual env (see
``tests/p2a_cases.py``), runs as a subprocess on the perturbed set.

The machine may be shared, so times come with the load average; ``--instructions`` also counts the
instructions one warm suite call executes (valgrind's callgrind, switched on for that call only), which
other processes do not change.

    .venv/bin/python benchmarks/bench_metrics.py [--pairs 10000] [--before 8be4d58] [--instructions]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from _results import machine_line, write_section  # noqa: E402
from metric_pairs import recombined_action_pairs  # noqa: E402
from p2a_cases import THRESHOLDS, paragraph2actions_values, perturbed_pairs, reference_actions  # noqa: E402

from chemactor.actions import STYLES  # noqa: E402
from chemactor.scoring.action_metrics import (  # noqa: E402
    ParsedStrings,
    _corpus_bleus,
    action_metrics,
    levenshtein_similarities,
)

WHOLE = "**whole suite** (`action_metrics`)"
# the last revision before the suite was vectorised
BEFORE = "d158349"


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


def pair_sets(data_dir: Path, count: int) -> dict[str, tuple[list[str], list[str]]]:
    return {
        "perturbed": perturbed_pairs(reference_actions(data_dir), count=count, seed=3),
        "recombined": recombined_action_pairs(data_dir, count, seed=1),
    }


def _module_at(revision: str):
    """``chemactor.scoring.action_metrics`` as it was at ``revision``, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{revision}:chemactor/scoring/action_metrics.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    folder = Path(tempfile.mkdtemp())
    path = folder / f"action_metrics_{revision}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shutil.rmtree(folder)
    return module


def _differences(ours: dict, theirs: dict) -> list[str]:
    return [name for name, value in ours.items() if name != "per_action_type" and abs(value - theirs[name]) > 1e-9]


def _instructions(data_dir: Path, pairs: int, revisions: list[str]) -> dict[tuple[str, str], int] | None:
    """Instructions of one warm ``action_metrics`` call per (pair set, revision): the call runs under
    callgrind with instrumentation switched on (``callgrind_control``) for that call only."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return None
    counts = {}
    for name in ("perturbed", "recombined"):
        for revision in revisions:
            with tempfile.TemporaryDirectory() as folder:
                command = [
                    "valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    f"--callgrind-out-file={Path(folder) / 'callgrind.out'}",
                    sys.executable,
                    __file__,
                    "--suite-only",
                    name,
                    revision,
                    "--pairs",
                    str(pairs),
                    "--data-dir",
                    str(data_dir),
                ]
                run = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                pid = run.stdout.readline().split()[-1]  # "ready PID": pairs built, the suite warmed up
                subprocess.run(["callgrind_control", "--instr=on", pid], capture_output=True, check=True)
                run.stdin.write("go\n")
                run.stdin.flush()
                run.stdout.readline()  # "done"
                subprocess.run(["callgrind_control", "--instr=off", pid], capture_output=True, check=True)
                _, log = run.communicate("stop\n")
                counts[name, revision] = int(re.search(r"Collected : (\d+)", log).group(1))
    return counts


def _suite_only(name: str, revision: str, pairs: int, data_dir: Path) -> None:
    """Under callgrind: build the pairs, warm up, then run one call between two lines of stdin."""
    predictions, references = pair_sets(data_dir, pairs)[name]
    suite = _module_at(revision).action_metrics if revision else action_metrics
    suite(predictions, references)
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.readline()
    suite(predictions, references)
    print("done", flush=True)
    sys.stdin.readline()


def _measure(name: str, predictions: list[str], references: list[str], repeats: int, revision: str, before):
    """Table rows for one pair set, and the whole suite's (wall, CPU) seconds."""
    ours = action_metrics(predictions, references)
    parsed = ParsedStrings.parse([*predictions, *references], STYLES["readable"])
    predicted_at, expected_at = parsed.positions(predictions), parsed.positions(references)
    parts = {
        "Levenshtein similarities (once, shared by mean and partial accuracies)": partial(
            levenshtein_similarities, predictions, references
        ),
        "split, parse and tokenize each distinct string and action once (validity, action types, BLEU tokens)": (
            partial(ParsedStrings.parse, [*predictions, *references], STYLES["readable"])
        ),
        "modified + original BLEU from those tokens": partial(_corpus_bleus, parsed.tokens, predicted_at, expected_at),
        WHOLE: partial(action_metrics, predictions, references),
    }
    timings = {part: _seconds(function, repeats) for part, function in parts.items()}
    rows = [f"| {name} | {part} | {wall:.3f} | {cpu:.3f} |" for part, (wall, cpu) in timings.items()]
    if before is not None:
        theirs = before.action_metrics(predictions, references)
        wall, cpu = _seconds(partial(before.action_metrics, predictions, references), repeats)
        rows.append(f"| {name} | whole suite at `{revision}` (before vectorising) | {wall:.3f} | {cpu:.3f} |")
        same = not _differences(ours, theirs) and ours["per_action_type"] == theirs["per_action_type"]
        rows.append(f"| {name} | same values as at `{revision}` | {'yes' if same else 'NO'} | |")
    distinct = len(set(predictions) | set(references))
    length = statistics.mean(map(len, references))
    rows.append(f"| {name} | distinct strings; mean reference length | {distinct:,} | {length:.0f} chars |")
    return rows, timings[WHOLE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--before", default=BEFORE, help="git revision to compare with ('' to skip)")
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument("--p2a-python", default="/tmp/p2a/bin/python")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("CHEMACTOR_DATA_DIR") or ROOT / "tests" / "data" / "reference"),
        help="reference data (default: $CHEMACTOR_DATA_DIR, else the copy the repository ships)",
    )
    parser.add_argument("--suite-only", nargs=2, metavar=("SET", "REVISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    if args.suite_only:
        _suite_only(args.suite_only[0], args.suite_only[1], args.pairs, args.data_dir)
        return
    machine = machine_line()
    before = _module_at(args.before) if args.before else None

    sets = pair_sets(args.data_dir, args.pairs)
    rows, whole = [], {}
    for name, (predictions, references) in sets.items():
        set_rows, whole[name] = _measure(name, predictions, references, args.repeats, args.before, before)
        rows += set_rows

    lines = [
        f"D2A metric suite on two sets of {args.pairs:,} prediction/reference pairs: `perturbed` (perturbations of "
        "the 100 Paragraph2Actions references, `tests/p2a_cases.py`) and `recombined` (references drawn action by "
        "action from all Paragraph2Actions and Smiles2Actions targets, predictions edited action by action, "
        "`tests/metric_pairs.py`).",
        "",
        f"Machine: {machine}. Pinned to one core; times are the median of {args.repeats} runs.",
        "",
        "Command: `.venv/bin/python benchmarks/bench_metrics.py --instructions` (paragraph2actions 1.5.0 in "
        "`/tmp/p2a`, see `tests/p2a_cases.py`).",
        "",
        "| pairs | what | wall (s) | CPU (s) |",
        "|---|---|---:|---:|",
        *rows,
        "",
    ]
    revisions = ["", args.before] if args.before else [""]
    if args.instructions and (counts := _instructions(args.data_dir, args.pairs, revisions)):
        lines += [
            "Instructions executed by one warm `action_metrics` call (valgrind's callgrind, which emulates the "
            "CPU without AVX-512, so numpy takes its AVX2 paths here; independent of the load):",
            "",
            "| pairs | this revision | " + (f"at `{args.before}` | ratio |" if args.before else ""),
            "|---|---:|" + ("---:|---:|" if args.before else ""),
        ]
        for name in sets:
            row = f"| {name} | {counts[name, ''] / 1e9:.2f} G |"
            if args.before:
                row += (
                    f" {counts[name, args.before] / 1e9:.2f} G | {counts[name, args.before] / counts[name, '']:.1f}x |"
                )
            lines.append(row)
        lines.append("")
    if Path(args.p2a_python).exists():
        predictions, references = sets["perturbed"]
        reference = paragraph2actions_values(args.p2a_python, predictions, references, THRESHOLDS)
        ours = action_metrics(predictions, references)
        p2a_cpu = sum(reference["cpu_seconds"].values())
        valid = ParsedStrings.parse(predictions, STYLES["readable"])
        ours_parse = valid.valid[valid.positions(predictions)].tolist()
        only_ours = sum(a and not b for a, b in zip(ours_parse, reference["parses"], strict=True))
        only_theirs = sum(b and not a for a, b in zip(ours_parse, reference["parses"], strict=True))
        lines += [
            "| paragraph2actions 1.5.0 function (perturbed set) | CPU (s) | its value | ChemActor's | difference |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| `{name}` | {reference['cpu_seconds'][name]:.2f} | {value:.6f} | {ours[name]:.6f} "
                f"| {abs(value - ours[name]):.1e} |"
                for name, value in reference["values"].items()
            ),
            f"| **all of the above** | **{p2a_cpu:.1f}** | | | |",
            "",
            f"Validity follows each side's parser of the grammar: of the {args.pairs:,} (often corrupted) "
            f"predictions, {only_ours} parse only with ChemActor's (`chemactor.actions`) and {only_theirs} only "
            "with paragraph2actions' `ReadableConverter`.",
            "",
            f"Whole suite: {whole['perturbed'][1]:.3f} s CPU against {p2a_cpu:.1f} s for paragraph2actions' "
            f"functions, {p2a_cpu / whole['perturbed'][1]:.0f}x less.",
            "",
        ]
    else:
        lines += [f"paragraph2actions not found at {args.p2a_python}: no comparison with it.", ""]
    lines += [f"Load average at the end: {os.getloadavg()[0]:.1f}."]
    markdown = "## D2A metrics: speed of the suite\n\n" + "\n".join(lines)
    write_section("bench_metrics", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
