"""Sizing torch's threads from the cores that are actually free (affinity, cgroup quotas, current load), and
pausing the cyclic garbage collector over batch work."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chemactor import cpu
from chemactor.errors import ConfigError


def test_cgroup_v2_quota_is_the_smallest_along_the_path(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "jobs" / "one").mkdir(parents=True)
    (root / "jobs" / "cpu.max").write_text("150000 100000\n")
    (root / "jobs" / "one" / "cpu.max").write_text("max 100000\n")
    membership = tmp_path / "self-cgroup"
    membership.write_text("0::/jobs/one\n")
    assert cpu.cgroup_cpu_quota(root, membership) == 1.5
    (root / "jobs" / "cpu.max").write_text("max 100000\n")
    assert cpu.cgroup_cpu_quota(root, membership) is None


def test_cgroup_v1_quota_and_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "cpu,cpuacct" / "box").mkdir(parents=True)
    (root / "cpu,cpuacct" / "box" / "cpu.cfs_quota_us").write_text("300000\n")
    (root / "cpu,cpuacct" / "box" / "cpu.cfs_period_us").write_text("100000\n")
    membership = tmp_path / "self-cgroup"
    membership.write_text("4:memory:/box\n3:cpu,cpuacct:/box\n")
    assert cpu.cgroup_cpu_quota(root, membership) == 3.0
    (root / "cpu,cpuacct" / "box" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu.cgroup_cpu_quota(root, membership) is None
    assert cpu.cgroup_cpu_quota(root, tmp_path / "missing") is None


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are Linux-only")
def test_a_busy_process_on_our_only_core_leaves_one_thread() -> None:
    """Pinned to one core beside a process spinning on it: one usable core, about one busy elsewhere."""
    original = os.sched_getaffinity(0)
    core = min(original)
    spinner = subprocess.Popen(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile True: pass"]
    )
    try:
        os.sched_setaffinity(0, {core})
        assert cpu.usable_cpus() == 1
        assert cpu.busy_elsewhere(0.5) > 0.5  # the spinner (and whatever else runs there), not this process
        assert cpu.recommended_threads() == 1
    finally:
        os.sched_setaffinity(0, original)
        spinner.kill()
        spinner.wait()


def test_the_variable_fixes_the_count_and_torch_follows(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setenv(cpu.THREADS_VARIABLE, "1")
    try:
        assert cpu.limit_torch_threads() == 1
        assert torch.get_num_threads() == 1 and cpu.torch_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv(cpu.THREADS_VARIABLE, "two")
    with pytest.raises(ConfigError, match="CHEMACTOR_NUM_THREADS must be a whole number"):
        cpu.recommended_threads()


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, chemactor.cpu; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


def test_cyclic_gc_is_paused_for_the_block_and_restored_as_it_was():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cpu.cyclic_gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("the block failed")
    assert gc.isenabled()  # resumed even after an error
    gc.disable()
    try:
        with cpu.cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a collector that was off stays off
    finally:
        gc.enable()
