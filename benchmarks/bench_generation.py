"""Throughput of the endpoint backend against a TGI-protocol server with a fixed latency per request.

With latency L and C requests in flight, a perfect client completes C / L requests per second. The
ratio of what the backend achieves to that ideal shows what the client itself costs (event loop, HTTP,
parsing) at concurrency 1, 8 and 64. The server runs in its own process so that its threads do not
share an interpreter with the client.

    python -m benchmarks.bench_generation [--latency 0.2] [--waves 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from huggingface_hub import constants

from benchmarks._results import machine_line, write_section
from chemactor.generation import EndpointBackend, Generation

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 64)


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "tgi_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, api: str, concurrency: int, requests: int, server_pid: int) -> tuple[float, float, float]:
    """Wall seconds, client CPU and server CPU seconds for ``requests`` generations, ``concurrency`` in flight."""
    backend = EndpointBackend(url, api=api, max_concurrency=concurrency, max_retries=0)
    started, cpu_started, server_started = time.perf_counter(), time.process_time(), cpu_seconds(server_pid)
    results = backend.generate_many([f"prompt {i}\nADD water" for i in range(requests)], progress=False)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    server_cpu = cpu_seconds(server_pid) - server_started
    failures = [result for result in results if not isinstance(result, Generation)]
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    return elapsed, cpu, server_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server-side seconds per request")
    parser.add_argument("--waves", type=int, default=20, help="requests per run = waves x concurrency")
    args = parser.parse_args()
    os.environ.pop("HF_HUB_OFFLINE", None)
    constants.HF_HUB_OFFLINE = False  # offline mode would block the loopback server too

    machine = machine_line()
    server, url = start_server(args.latency)
    rows = []
    try:
        for api in ("generate", "chat"):
            for concurrency in CONCURRENCY:
                requests = concurrency * args.waves
                elapsed, cpu, server_cpu = measure(url, api, concurrency, requests, server.pid)
                achieved, ideal = requests / elapsed, concurrency / args.latency
                per_request = (1000 * cpu / requests, 1000 * server_cpu / requests)
                rows.append((api, concurrency, requests, elapsed, achieved, ideal, *per_request))
                print(f"{api} c={concurrency}: {achieved:.1f} of {ideal:.1f} ideal requests/s ({achieved / ideal:.0%})")
    finally:
        server.terminate()
        server.wait()
    load_after = os.getloadavg()[0]

    table = [
        "| api | concurrency | requests | seconds | requests/s | ideal requests/s | % of ideal "
        "| client CPU ms/req | server CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {api} | {c} | {n} | {elapsed:.2f} | {achieved:.1f} | {ideal:.1f} | {achieved / ideal:.0%} "
        f"| {client_ms:.2f} | {server_ms:.2f} |"
        for api, c, n, elapsed, achieved, ideal, client_ms, server_ms in rows
    ]
    markdown = "\n".join(
        [
            "## Generation: endpoint backend throughput (bench_generation.py)",
            "",
            f"`python -m benchmarks.bench_generation --latency {args.latency} --waves {args.waves}`: "
            f"`EndpointBackend.generate_many` against the TGI-protocol test server (`tests/tgi_server.py`, own "
            f"process) answering every request after {args.latency * 1000:.0f} ms; ideal = concurrency / latency. "
            "`generate` is TGI's text_generation route with details, `chat` is `/v1/chat/completions`; no streaming.",
            "",
            *table,
            "",
            f"Machine: {machine}; load average {load_after:.1f} at the end. Client and server share the "
            "machine's cores (and any other job on it). At concurrency 64 the ideal rate needs (client + server "
            "CPU per request) x 320/s of CPU; where that is a large share of what the cores give one process "
            "pair, the shortfall is CPU contention as much as client cost.",
        ]
    )
    write_section("generation-throughput", markdown)


if __name__ == "__main__":
    main()
