"""CPU use: how many threads torch should use on this machine now (the cores this process may run on, less
the cores other processes are busy with), and pausing Python's cyclic garbage collector over batch work.

torch sizes its intra-op pool to every core it sees. When other jobs hold those cores, each parallel
region waits at its barrier for a worker that is not scheduled, and OpenMP's workers spin while they wait:
the quickstart beside two busy processes on 2 cores took 25 min wall and 12 min CPU instead of 34 s.
Sizing the pool to the cores that are actually free avoids it (one thread runs no parallel region at all).
:func:`limit_torch_threads` is the one place that does it, called where a model is trained
(``chemactor.training``) or loaded for local inference and evaluation (``chemactor.inference``, the
generation stage's transformers backend). This module imports nothing heavy; torch only when that is called.

``CHEMACTOR_NUM_THREADS=N`` fixes the count; an ``OMP_NUM_THREADS`` that the user set is left to torch.

Scoring a batch (selection's views, the D2A metrics) builds hundreds of thousands of small lists, tuples and
dicts that all live until the batch is done and none of which is in a reference cycle: the cyclic collector,
triggered by the allocations, traverses them again and again for nothing (a tenth of the time).
:func:`cyclic_gc_paused` switches it off for such a block; reference counting frees everything as usual.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from chemactor.errors import ConfigError

logger = logging.getLogger(__name__)

THREADS_VARIABLE = "CHEMACTOR_NUM_THREADS"
SAMPLE_SECONDS = 0.5
CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus() -> int:
    """The cores this process may use: its affinity mask (``taskset``, cpusets), capped by a cgroup CPU quota
    (a container's ``--cpus``), whole cores only and at least one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity masks
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (``cpu.max`` of cgroup v2, the smallest along the path
    up to the root; ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` of v1), or ``None`` when there is none."""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:  # cgroup v2, the unified hierarchy (beside v1 in hybrid set-ups)
            unified = root / "unified" if (root / "unified").is_dir() else root
            directory = unified / path.lstrip("/")
            for folder in (directory, *directory.parents):
                quotas.append(_read_quota(folder / "cpu.max"))
                if folder == unified:
                    break
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own mount
            for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                quotas.append(_read_v1_quota(root / name / path.lstrip("/")))
    found = [quota for quota in quotas if quota is not None]
    return min(found) if found else None


def _read_quota(path: Path) -> float | None:
    try:
        quota, period = path.read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _read_v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="utf-8"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def busy_elsewhere(seconds: float = SAMPLE_SECONDS) -> float:
    """How many of this process's cores other processes keep busy, measured over ``seconds`` now.

    On Linux: the busy time of the cores in the affinity mask (``/proc/stat``) less this process's own CPU
    time, over the same interval. Elsewhere: the 1-minute load average, scaled to this process's share of
    the machine's cores.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
        before, own_before, started = _busy_jiffies(cpus), _own_seconds(), time.monotonic()
    except (AttributeError, OSError):
        if not hasattr(os, "getloadavg"):
            return 0.0
        return os.getloadavg()[0] * usable_cpus() / (os.cpu_count() or 1)
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    busy = (_busy_jiffies(cpus) - before) / os.sysconf("SC_CLK_TCK")
    return max(0.0, (busy - (_own_seconds() - own_before)) / elapsed)


def _busy_jiffies(cpus: list[int]) -> int:
    """Non-idle time (user, nice, system, irq, softirq, steal) of ``cpus`` since boot, in clock ticks."""
    wanted = {f"cpu{index}" for index in cpus}
    total = 0
    for line in Path("/proc/stat").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[1:9])
            total += user + nice + system + irq + softirq + steal
    return total


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def recommended_threads() -> int:
    """Threads for CPU work now: ``CHEMACTOR_NUM_THREADS`` if set, else the usable cores not busy elsewhere
    (at least one)."""
    fixed = os.environ.get(THREADS_VARIABLE, "").strip()
    if fixed:
        try:
            return max(1, int(fixed))
        except ValueError:
            raise ConfigError(f"{THREADS_VARIABLE} must be a whole number of threads, got {fixed!r}") from None
    usable = usable_cpus()
    return max(1, min(usable, usable - round(busy_elsewhere())))


def limit_torch_threads() -> int:
    """Size torch's intra-op thread pool by :func:`recommended_threads` and return the count in use.

    A user's own ``OMP_NUM_THREADS`` (without ``CHEMACTOR_NUM_THREADS``) wins: torch has already applied it.
    """
    import torch

    if os.environ.get("OMP_NUM_THREADS") and not os.environ.get(THREADS_VARIABLE):
        return torch.get_num_threads()
    threads = recommended_threads()
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    logger.info("torch uses %d thread(s) (%d usable core(s))", threads, usable_cpus())
    return threads


def torch_threads() -> int | None:
    """torch's intra-op thread count if torch is loaded (``None`` otherwise; never imports it)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (if it runs), resuming it after, even on error."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
