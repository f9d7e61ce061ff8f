"""Install size and import time of the package, per git revision: what ``pip install chemactor`` costs a user.

For each revision the package is built into a wheel from ``git archive`` (the committed files only), then
installed into a fresh virtual environment as the README says: the core alone (``pip install WHEEL``), and
for revisions whose core still requires torch, the CPU torch wheel first. Reported per revision and install:
the distributions installed, the size of ``site-packages`` (an empty environment's pip subtracted), whether
torch is there, and the median over ``--repeats`` runs of ``python -X importtime -c "import chemactor.scoring"``
(the cumulative time of that module, and the process's wall time). The machine is shared: read the load
average in the header beside the times.

    .venv/bin/python -m benchmarks.bench_install --revisions 8be4d58 HEAD [--extras train] [--repeats 5] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import machine_line, write_section  # noqa: E402

TORCH = "torch==2.13.0"
IMPORT = "import chemactor.scoring"


def run(*command: str | Path, cwd: Path | None = None) -> str:
    return subprocess.run([str(part) for part in command], cwd=cwd, check=True, capture_output=True, text=True).stdout


def build_wheel(revision: str, workdir: Path) -> Path:
    """The wheel of ``revision``'s committed files (an uncommitted change is not measured)."""
    source = workdir / "src"
    source.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", workdir / "dist", source)
    return next((workdir / "dist").glob("chemactor-*.whl"))


def tree_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def import_times(python: Path, repeats: int) -> tuple[float, float]:
    """Median cumulative import time of ``chemactor.scoring`` (ms) and median process wall time (s)."""
    cumulative, walls = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run([python, "-X", "importtime", "-c", IMPORT], check=True, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        line = next(line for line in result.stderr.splitlines() if line.rstrip().endswith("| chemactor.scoring"))
        cumulative.append(int(line.split("|")[1]) / 1000)
    return statistics.median(cumulative), statistics.median(walls)


def measure(revision: str, extras: str | None, repeats: int, baseline: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="chemactor-install-") as tmp:
        workdir = Path(tmp)
        wheel = build_wheel(revision, workdir)
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(archive.read(name) for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        core_needs_torch = any(
            line.startswith("Requires-Dist: torch") and "extra ==" not in line
            for line in metadata.decode("utf-8").splitlines()
        )
        venv = workdir / "venv"
        run(sys.executable, "-m", "venv", venv)
        pip = venv / "bin" / "pip"
        started = time.perf_counter()
        if core_needs_torch or extras == "train":
            run(pip, "install", "--quiet", TORCH)  # the CPU build, as the README says, never a CUDA one
        target = f"{wheel}[{extras}]" if extras else str(wheel)
        run(pip, "install", "--quiet", target)
        install_s = time.perf_counter() - started
        packages = site_packages(venv)
        distributions = len(list(packages.glob("*.dist-info")))
        has_torch = (packages / "torch").is_dir()
        cumulative_ms, wall_s = import_times(venv / "bin" / "python", repeats)
        return {
            "revision": run("git", "rev-parse", "--short", revision, cwd=ROOT).strip(),
            "install": f"chemactor[{extras}]" if extras else "chemactor",
            "torch_first": core_needs_torch or extras == "train",
            "distributions": distributions,
            "mib": (tree_bytes(packages) - baseline) / 2**20,
            "torch": has_torch,
            "install_s": install_s,
            "import_ms": cumulative_ms,
            "wall_s": wall_s,
        }


def empty_venv_bytes() -> int:
    """site-packages of a venv with nothing installed (pip): subtracted so the sizes are the project's."""
    with tempfile.TemporaryDirectory(prefix="chemactor-empty-") as tmp:
        run(sys.executable, "-m", "venv", Path(tmp) / "venv")
        return tree_bytes(site_packages(Path(tmp) / "venv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", nargs="+", default=["8be4d58", "HEAD"])
    parser.add_argument("--extras", nargs="*", default=["train"], help="extras measured for the last revision too")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    header = machine_line()
    baseline = empty_venv_bytes()
    rows = [measure(revision, None, args.repeats, baseline) for revision in args.revisions]
    rows += [measure(args.revisions[-1], extra, args.repeats, baseline) for extra in args.extras]
    lines = [
        "| revision | install | CPU torch first | distributions | site-packages MiB | torch installed "
        f"| install s | `{IMPORT}` ms | process wall s |",
        "|---|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['revision']} | `pip install {row['install']}` | {'yes' if row['torch_first'] else 'no'} "
            f"| {row['distributions']} | {row['mib']:.0f} | {'yes' if row['torch'] else 'no'} | {row['install_s']:.0f} "
            f"| {row['import_ms']:.0f} | {row['wall_s']:.2f} |"
        )
    table = "\n".join(lines)
    print(header)
    print(table)
    if args.write:
        markdown = (
            "## Install size and import time (`benchmarks/bench_install.py`)\n\n"
            f"{header}. A wheel per revision, a fresh venv each, pip's own files subtracted; import times are "
            f'the median of {args.repeats} runs of `python -X importtime -c "{IMPORT}"` (cumulative time of '
            "the module; wall time of the whole process). Install times read from the local package mirror.\n\n"
            f"{table}\n"
        )
        write_section("bench_install", markdown)


if __name__ == "__main__":
    main()
