"""Streaming and sharded generation: n processes share one input list, the finished-id index resumes them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from chemactor.builders import read_records
from chemactor.data import write_records
from chemactor.errors import ConfigError
from chemactor.examples import example_records
from chemactor.generation import AugmentBackend, GenerationRunner, RunSettings
from chemactor.generation.runner import GenerationConfig, IdSet, shard_of

REPO = Path(__file__).resolve().parents[1]
PAIRS = [row for row in example_records() if not row["reaction_smiles"]]


def _generate(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "chemactor.cli", "generate", *args], env=env, cwd=REPO)


def test_three_processes_share_one_input_list_and_merge_without_duplicates(tmp_path: Path) -> None:
    inputs = write_records(PAIRS, tmp_path / "inputs.jsonl")
    output = tmp_path / "out"
    common = ["--input", str(inputs), "-o", str(output), "--samples", "2"]
    processes = [_generate(*common, "--shard", f"{index}/3") for index in range(3)]
    assert [process.wait(timeout=600) for process in processes] == [0, 0, 0]
    assert sorted(path.name for path in output.iterdir()) == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
    merged = read_records(output)  # the folder of all shards: one dataset
    expected = {f"{row['id']}/{sample}" for row in PAIRS for sample in range(2)}
    assert len(merged) == len(expected) and set(merged["id"]) == expected
    # each process did exactly its own inputs, split by id
    for index in range(3):
        ids = read_records(output / f"shard-{index}-of-3")["id"]
        assert ids and all(shard_of(row_id.rsplit("/", 1)[0], 3) == index for row_id in ids)
    # a rerun of one shard finds everything done through its index
    rerun = _generate(*common, "--shard", "1/3")
    assert rerun.wait(timeout=600) == 0
    assert len(read_records(output)) == len(expected)


def test_the_split_is_deterministic_and_roughly_even() -> None:
    counts = Counter(shard_of(f"input-{number}", 4) for number in range(4000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 900
    assert shard_of("ord-123", 7) == shard_of("ord-123", 7)


@pytest.mark.parametrize("shard", ["3/3", "1", "a/b", "-1/2"])
def test_a_bad_shard_is_a_config_error(shard: str) -> None:
    with pytest.raises(ConfigError, match="shard"):
        GenerationConfig(input="examples", output_dir="out", shard=shard).check_complete()


def test_the_index_is_rebuilt_when_it_misses_rows(tmp_path: Path) -> None:
    """A kill between a row and its index line, or a folder from before the index: the rows are the truth."""
    runner = GenerationRunner(AugmentBackend(PAIRS), RunSettings(steps="augment", samples=3))
    summary = runner.run(PAIRS[:10], tmp_path, progress=False)
    assert summary.done == 30
    index = next((tmp_path / "index").glob("*.keys"))
    assert index.stat().st_size == 30 * 8 and len(IdSet.load(tmp_path)) == 30
    index.write_bytes(index.read_bytes()[: 25 * 8])  # the last five keys never made it
    finished = IdSet.load(tmp_path)
    assert len(finished) == 30 and all(f"{row['id']}/2" in finished for row in PAIRS[:10])
    assert "nothing/0" not in finished
    index.unlink()
    again = runner.run(PAIRS[:12], tmp_path, progress=False)
    assert (again.done, again.skipped) == (6, 30)


def test_inputs_are_taken_lazily(tmp_path: Path) -> None:
    """The runner takes an input only when the window has room: rows are on disk before the inputs run out."""
    written_when_taken: list[int] = []

    def inputs():
        for row in PAIRS[:40]:
            written_when_taken.append(sum(len(path.read_text().splitlines()) for path in tmp_path.glob("shards/*")))
            yield row

    runner = GenerationRunner(AugmentBackend(PAIRS), RunSettings(steps="augment", max_in_flight=4))
    summary = runner.run(inputs(), tmp_path, progress=False)
    assert summary.done == 40
    assert written_when_taken[:4] == [0, 0, 0, 0] and written_when_taken[-1] >= 30
    # and a run over no inputs at all takes nothing and writes nothing
    assert runner.run(iter(()), tmp_path / "empty", progress=False).done == 0
