"""The quickstart (``chemactor pipeline recipes/quickstart.yaml``) on an idle machine and beside busy processes.

A laptop is rarely idle. torch sizes its thread pool to every core it can see; when other processes hold
those cores, its OpenMP workers spin at each barrier waiting for a descheduled sibling, and the run burns
CPU time it never turns into work. ChemActor sizes torch's threads from the cores that are actually free
(``chemactor.cpu``); this script shows the effect. Each run is a fresh ``chemactor pipeline`` process in an
empty output folder; its CPU time is the user + system time of that process and everything it waited for
(``os.wait4``). Two threading variants:

- ``torch-default``: torch's own choice (every core it sees), the behaviour before ChemActor sized threads;
  reproduced by setting ``CHEMACTOR_NUM_THREADS`` to torch's default count;
- ``auto``: ChemActor's sizing (``CHEMACTOR_NUM_THREADS`` unset).

and two backgrounds: ``idle`` (nothing started beside it) and ``busy`` (``--busy`` processes running
``while True: pass`` for the whole run). Every measurement is kept in ``quickstart_load.json`` beside this
file, so one variant can be re-measured alone (``--variants auto``) and the table still shows both::

    python -m benchmarks.bench_quickstart_load                      # all four runs, then the table
    python -m benchmarks.bench_quickstart_load --variants auto --backgrounds busy
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._results import machine_line, write_section

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = Path(__file__).with_name("quickstart_load.json")
VARIANTS = ("torch-default", "auto")
BACKGROUNDS = ("idle", "busy")
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def torch_default_threads() -> int:
    """The intra-op thread count torch picks by itself in a fresh process (no thread variables set)."""
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def run_quickstart(
    recipe: Path, variant: str, background: str, busy: int, default_threads: int, timeout: float | None
) -> dict:
    """One timed pipeline run in a fresh output folder; returns its measurement.

    A run still going after ``timeout`` seconds is stopped and recorded as such: its wall and CPU times are
    then lower bounds.
    """
    env = {**os.environ, **OFFLINE, "PYTHONUNBUFFERED": "1"}
    env.pop("CHEMACTOR_NUM_THREADS", None)
    if variant == "torch-default":
        env["CHEMACTOR_NUM_THREADS"] = str(default_threads)
    spinners = []
    if background == "busy":
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        time.sleep(2.0)  # let them take the cores before the run starts
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="chemactor-bench-qs-") as scratch:
            output = Path(scratch) / "out"
            log_path = Path(scratch) / "log.txt"
            command = [sys.executable, "-m", "chemactor.cli", "pipeline", str(recipe), "-o", str(output)]
            started = time.monotonic()
            with log_path.open("w") as log:
                child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                stopped = False
                while True:
                    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                    if pid:
                        break
                    if timeout is not None and time.monotonic() - started > timeout and not stopped:
                        child.kill()
                        stopped = True
                    time.sleep(0.5)
            wall = time.monotonic() - started
            load_after = os.getloadavg()
            if not stopped and os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{' '.join(command)} failed:\n{log_path.read_text()[-3000:]}")
            stages = {
                stage: json.loads(path.read_text()) if (path := output / folder / "stage.json").exists() else {}
                for stage, folder in (("training", "4-training"), ("evaluation", "5-evaluation"))
            }
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    return {
        "variant": variant,
        "background": background,
        "busy_processes": busy if background == "busy" else 0,
        "stopped_after_s": round(wall) if stopped else None,
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "training_s": stages["training"].get("seconds"),
        "evaluation_s": stages["evaluation"].get("seconds"),
        "threads": {stage: record.get("summary", {}).get("torch_threads") for stage, record in stages.items()},
        "load_before": [round(value, 2) for value in load_before],
        "load_after": [round(value, 2) for value in load_after],
        "when": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
    }


def render(rows: list[dict], machine: str) -> str:
    """The RESULTS.md section: one row per variant and background, then how to read it."""
    order = {
        (variant, background): index
        for index, (variant, background) in enumerate(
            (variant, background) for variant in VARIANTS for background in BACKGROUNDS
        )
    }
    rows = sorted(rows, key=lambda row: order[(row["variant"], row["background"])])
    lines = [
        "## Quickstart beside busy processes (`benchmarks/bench_quickstart_load.py`)",
        "",
        machine,
        "",
        "`chemactor pipeline recipes/quickstart.yaml` in a fresh output folder; CPU = user + system time of the",
        "pipeline process (`os.wait4`). `busy`: that many `python -c 'while True: pass'` processes ran beside it.",
        "`torch-default` is torch's own thread count (all cores, the behaviour before ChemActor sized threads);",
        "`auto` is `chemactor.cpu`'s sizing. Load average = the 1-minute load average just before / after the run",
        "(it includes other jobs on the machine, which this benchmark does not control).",
        "",
        "| threads | background | wall (s) | CPU (s) | training (s) | evaluation (s) | torch threads "
        "(training, evaluation) | load average before / after | measured |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        background = f"{row['busy_processes']} busy" if row["background"] == "busy" else "idle"
        bound = ">" if row.get("stopped_after_s") else ""  # stopped before the end: lower bounds
        threads = row["threads"]
        lines.append(
            f"| {row['variant']} | {background} | {bound}{row['wall_s']:.1f} | {bound}{row['cpu_s']:.1f} "
            f"| {_seconds(row['training_s'])} | {_seconds(row['evaluation_s'])} "
            f"| {threads.get('training') or '-'}, {threads.get('evaluation') or '-'} "
            f"| {row['load_before'][0]:.1f} / {row['load_after'][0]:.1f} | {row['when']} |"
        )
    if any(row.get("stopped_after_s") for row in rows):
        lines += [
            "",
            "`>`: the run was stopped at the benchmark's `--timeout` before it finished; the times are lower bounds.",
        ]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "quickstart.yaml")
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the run (default 2)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument("--backgrounds", default=",".join(BACKGROUNDS), help=f"subset of {BACKGROUNDS}")
    parser.add_argument("--timeout", type=float, default=None, help="stop a run after this many seconds")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    options = parser.parse_args(argv)
    variants = [name for name in options.variants.split(",") if name]
    backgrounds = [name for name in options.backgrounds.split(",") if name]
    unknown = sorted(set(variants) - set(VARIANTS)) + sorted(set(backgrounds) - set(BACKGROUNDS))
    if unknown:
        parser.error(f"unknown variant/background {', '.join(unknown)}")
    machine = machine_line()
    default_threads = torch_default_threads()
    kept = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else []
    for variant in variants:
        for background in backgrounds:
            print(f"running {variant} / {background} ...", flush=True)
            row = run_quickstart(options.recipe, variant, background, options.busy, default_threads, options.timeout)
            print(json.dumps(row), flush=True)
            kept = [old for old in kept if (old["variant"], old["background"]) != (variant, background)] + [row]
            if not options.no_write:
                MEASUREMENTS.write_text(json.dumps(kept, indent=1) + "\n")
    table = render(kept, f"{machine}; torch's default here: {default_threads} threads")
    print(table)
    if not options.no_write:
        write_section("quickstart-load", table)


if __name__ == "__main__":
    main()
