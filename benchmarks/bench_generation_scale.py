"""The generation runner at scale: peak memory and items/s over 10k to 1M inputs, and resume start-up.

Each size runs in a fresh process (so its peak RSS is its own) against the TGI-protocol test server
(``tests/tgi_server.py``, its own process) with a fixed latency per request, ``steps: r2d`` without shots
(one short request per item, so the client is what is measured) and 64 items in flight; ideal items/s =
64 / latency. Inputs come from a generator, so nothing but the runner holds them. ``--seconds`` caps the
wall time of a size (inputs stop being taken then; what is in flight finishes): the table says how many
items each size completed. Resume start-up writes N rows (with their id index) into an output folder and
times what a rerun does before its first request: open the store, load the finished ids, read the manifest;
also without the index (rebuilt from the rows, as for a folder written before indexes existed).

    python -m benchmarks.bench_generation_scale [--sizes 10000 100000 1000000] [--latency 0.2] [--seconds 300]
        [--append]   (keep the rows of other sizes already in RESULTS.md: an uncapped 1M run can go on its own)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._results import machine_line, merged_rows, write_section

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 64


def run_size(url: str, size: int, latency: float, seconds: float, output: Path) -> dict[str, float]:
    """One runner pass over ``size`` generated inputs in this process; returns items, seconds and peak RSS."""
    from huggingface_hub import constants

    from chemactor.data import make_record
    from chemactor.generation import EndpointBackend, GenerationRunner, RunSettings

    constants.HF_HUB_OFFLINE = False  # offline mode would block the loopback server too
    deadline = time.monotonic() + seconds

    def inputs():
        for number in range(size):
            if time.monotonic() > deadline:
                return
            yield make_record(id=f"r{number:07d}", source="bench", reaction_smiles="CCO.CC(=O)O>>CCOC(C)=O")

    backend = EndpointBackend(url, api="generate", max_concurrency=CONCURRENCY, max_retries=0)
    settings = RunSettings(steps="r2d", shots=0, max_in_flight=CONCURRENCY, sampling={"max_new_tokens": 8})
    runner = GenerationRunner(backend, settings)
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = runner.run(inputs(), output, progress=False)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if summary.failed:
        raise RuntimeError(f"failed items: {dict(summary.failed)}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "items": summary.done,
        "seconds": elapsed,
        "cpu_ms_per_item": 1000 * cpu / max(summary.done, 1),
        "peak_rss_mb": peak_mb,
        "ideal": CONCURRENCY / latency,
    }


def resume_startup(rows: int, directory: Path) -> dict[str, float]:
    """Seconds a rerun spends before its first request with ``rows`` rows on disk, with and without the index."""
    from chemactor.data import dumps_meta
    from chemactor.generation.runner import OutputStore, id_key

    shards, index = directory / "shards", directory / "index"
    shards.mkdir(parents=True)
    index.mkdir()
    started = time.perf_counter()
    meta = dumps_meta({"input": {"id": "x", "source": "bench"}, "steps": "r2d"})
    keys = []
    with (shards / "part-00000.jsonl").open("w") as rows_file:
        for number in range(rows):
            row_id = f"r{number:07d}/0"
            row = {"id": row_id, "source": "generated", "reaction_smiles": "CCO.CC(=O)O>>CCOC(C)=O"}
            row |= {"description": "Ethanol and acetic acid were heated.", "actions": "", "split": "train"}
            rows_file.write(json.dumps(row | {"meta": meta}) + "\n")
            keys.append(id_key(row_id))
    np.array(keys, dtype="<i8").tofile(index / "part-00000.keys")
    written = time.perf_counter() - started

    def open_store() -> float:
        started = time.perf_counter()
        store = OutputStore(directory)
        finished = store.finished_ids()
        store.read_manifest()
        store.close()
        assert len(finished) == rows and f"r{rows - 1:07d}/0" in finished
        return time.perf_counter() - started

    with_index = open_store()
    shutil.rmtree(index)
    without_index = open_store()  # rebuilds the index from the rows
    return {"rows": rows, "write_seconds": written, "with_index": with_index, "without_index": without_index}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--latency", type=float, default=0.2, help="server-side seconds per request")
    parser.add_argument("--seconds", type=float, default=300, help="wall-time cap per size")
    parser.add_argument("--resume-rows", type=int, default=1_000_000)
    parser.add_argument("--append", action="store_true", help="keep the rows of other sizes in RESULTS.md")
    parser.add_argument("--child", nargs=3, metavar=("URL", "SIZE", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, size, output = args.child
        print(json.dumps(run_size(url, int(size), args.latency, args.seconds, Path(output))))
        return

    machine = machine_line()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "tgi_server.py"), "--latency", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"} | {"PYTHONPATH": str(ROOT)}
    results, loads = [], []
    work = Path(tempfile.mkdtemp(prefix="chemactor-bench-scale-"))
    try:
        for size in args.sizes:
            command = [sys.executable, "-m", "benchmarks.bench_generation_scale", "--latency", str(args.latency)]
            command += ["--seconds", str(args.seconds), "--child", url, str(size), str(work / f"run-{size}")]
            child = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
            loads.append(os.getloadavg()[0])
            print(results[-1], f"load {loads[-1]:.1f}")
        resume = resume_startup(args.resume_rows, work / "resume")
        print(resume)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    rows = {}
    for result, load in zip(results, loads, strict=True):
        rate, ideal = result["items"] / result["seconds"], result["ideal"]
        cells = [f"{result['size']:,}", f"{result['items']:,}", f"{args.seconds:g}", f"{result['seconds']:.1f}"]
        cells += [f"{rate:.1f}", f"{ideal:.1f}", f"{rate / ideal:.0%}", f"{result['cpu_ms_per_item']:.2f}"]
        cells += [f"{result['peak_rss_mb']:.0f}", f"{load:.1f}"]
        rows[cells[0]] = f"| {' | '.join(cells)} |"
    lines = merged_rows("generation-scale", rows) if args.append else list(rows.values())
    rss = [float(line.split("|")[9]) for line in lines]  # the peak RSS cell of each size, smallest size first
    table = [
        "| inputs | items done | cap (s) | seconds | items/s | ideal items/s | % of ideal | client CPU ms/item "
        "| peak RSS MiB | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *lines,
        "",
        f"Peak RSS of the largest size: {rss[-1] / rss[0]:.2f}x that of the smallest.",
    ]
    markdown = "\n".join(
        [
            "## Generation at scale: memory, items/s and resume start-up (bench_generation_scale.py)",
            "",
            f"`python -m benchmarks.bench_generation_scale --sizes {' '.join(map(str, args.sizes))} --latency "
            f"{args.latency} --seconds {args.seconds:g} --resume-rows {args.resume_rows}{' --append' * args.append}`: "
            "the runner (`steps: r2d`, "
            f"no shots, {CONCURRENCY} items in flight) over generated inputs against the TGI-protocol test server "
            f"answering after {args.latency * 1000:.0f} ms; each size in a fresh process, capped at 'cap' seconds (a "
            "capped size stops taking inputs: 'items done' says how far it got)"
            + (", rows of several runs (`--append`), each with the load average at its end." if args.append else "."),
            "",
            *table,
            "",
            f"Resume start-up with {resume['rows']:,} rows on disk (open the store, load the finished ids, read the "
            f"manifest): **{resume['with_index']:.2f} s** with the id index; {resume['without_index']:.2f} s without "
            f"it (rebuilt from the rows, once). Writing the rows took {resume['write_seconds']:.1f} s.",
            "",
            f"Machine: {machine}; load average at the end of each size in the table (the machine is shared).",
        ]
    )
    write_section("generation-scale", markdown)


if __name__ == "__main__":
    main()
