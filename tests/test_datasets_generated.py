"""The generated-data builder and the JSONL record helpers: provenance kept, bad rows named or counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import datasets
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from chemactor.builders import load_generated, read_records
from chemactor.cli import app
from chemactor.data import RECORD_FEATURES, RecordError, get_meta, iter_jsonl, make_record, write_records
from chemactor.errors import InputError
from dataset_scripts import ChemActorGenerated


def _generated(index: int, **meta) -> dict[str, str]:
    return make_record(
        id=f"ord-{index}/0",
        source="generated",
        reaction_smiles="CCO.CC(=O)O>>CCOC(C)=O",
        description=f"Ethanol was stirred with acetic acid for {index} h.",
        actions=f"ADD ethanol; ADD acetic acid; STIR for {index} h.",
        meta={"generator": "tiny-llama", "prompt_version": "v1", "endpoint": "http://127.0.0.1:8080", **meta},
    )


@pytest.fixture
def generation_dir(tmp_path: Path) -> Path:
    """A generation output directory: two JSONL shards, a parquet file and files that are not records."""
    root = tmp_path / "generation"
    write_records([_generated(i, crosscheck={"verdict": "pass"}) for i in range(3)], root / "shards/part-00000.jsonl")
    write_records([_generated(i) for i in range(3, 5)], root / "shards/part-00001.jsonl")
    extra = [{**_generated(i), "divergence": 0.25 * i} for i in range(5, 7)]
    datasets.Dataset.from_list(extra).to_parquet(str(root / "selected.parquet"))
    (root / "manifest.json").write_text("{}", encoding="utf-8")
    (root / "failures").mkdir()
    (root / "failures/part-00000.ndjson").write_text('{"id": "x", "error": {}}\n', encoding="utf-8")
    return root


def test_generated_rows_load_with_their_provenance(generation_dir: Path) -> None:
    dataset = load_generated(generation_dir)
    assert dataset.features == RECORD_FEATURES
    assert sorted(dataset["id"]) == [f"ord-{i}/0" for i in range(7)]
    rows = {row["id"]: row for row in dataset}
    assert get_meta(rows["ord-0/0"])["crosscheck"] == {"verdict": "pass"}
    assert get_meta(rows["ord-3/0"])["endpoint"] == "http://127.0.0.1:8080"
    # A column outside the schema (a divergence score written by selection) moves into meta.
    assert get_meta(rows["ord-6/0"])["divergence"] == 1.5
    assert rows["ord-6/0"]["actions"] == "ADD ethanol; ADD acetic acid; STIR for 6 h."


def test_a_broken_shard_line_is_named_or_counted(generation_dir: Path, tmp_path: Path) -> None:
    shard = generation_dir / "shards/part-00001.jsonl"
    lines = shard.read_text(encoding="utf-8").splitlines(keepends=True)
    shard.write_text(lines[0] + '{"id": "cut-off", "sour\n' + lines[1], encoding="utf-8")
    with pytest.raises(RecordError, match=r"part-00001\.jsonl:2: not JSON"):
        load_generated(generation_dir)
    builder = ChemActorGenerated(data_dir=str(generation_dir), skip_bad_rows=True, cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    assert len(builder.as_dataset()["train"]) == 7
    assert dict(builder.dropped) == {"not JSON": 1}


def test_a_torn_last_line_from_a_killed_writer_is_skipped(generation_dir: Path) -> None:
    shard = generation_dir / "shards/part-00001.jsonl"
    complete = shard.read_text(encoding="utf-8")
    shard.write_text(complete + '{"id": "in-flight", "sour', encoding="utf-8")
    with pytest.warns(UserWarning, match=r"part-00001\.jsonl:3: skipping a torn last line"):
        assert len(load_generated(generation_dir)) == 7
    shard.write_text(complete + '{"id": "in-flight", "sour\n', encoding="utf-8")  # a finished line: real damage
    with pytest.raises(RecordError, match=r"part-00001\.jsonl:3: not JSON"):
        load_generated(generation_dir)


def test_a_row_missing_a_field_is_named(generation_dir: Path) -> None:
    row = _generated(9)
    del row["split"]
    with (generation_dir / "shards/part-00002.jsonl").open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    with pytest.raises(RecordError, match=r"part-00002\.jsonl:1: missing field\(s\) split"):
        load_generated(generation_dir)
    assert len(load_generated(generation_dir, skip_bad_rows=True)) == 7


def test_missing_or_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere is not a seed source"):
        load_generated(tmp_path / "nowhere")
    with pytest.raises(RecordError, match=r"no \*\.jsonl"):
        load_generated(tmp_path)


def test_write_and_read_records_round_trip(tmp_path: Path) -> None:
    records = [_generated(i) for i in range(4)]
    path = write_records(records, tmp_path / "out" / "rows.jsonl")
    assert read_records(path).to_list() == records
    assert not list(path.parent.glob("*.partial"))
    with pytest.raises(RecordError, match=r"record 1 .*split"):
        write_records([records[0], {**records[1], "split": "dev"}], path)
    assert read_records(path).to_list() == records, "a failed write leaves the previous file intact"
    assert not list(path.parent.glob("*.partial"))


def test_iter_jsonl_reads_gzip_and_names_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(RecordError, match=r"rows\.jsonl\.gz:3: expected a JSON object, got list"):
        list(iter_jsonl(path))
    seen = []
    assert list(iter_jsonl(path, on_error=lambda where, problem: seen.append(where))) == [(1, {"a": 1})]
    assert seen == [f"{path}:3"]


@given(st.lists(st.text(max_size=20), max_size=5))
def test_iter_jsonl_never_fails_with_anything_but_record_error(lines: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.jsonl"
        path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines), encoding="utf-8")
        try:
            rows = list(iter_jsonl(path))
        except RecordError as exc:
            assert str(path) in str(exc)
        else:
            assert all(isinstance(row, dict) for _, row in rows)


def test_generated_data_exports_by_split_for_load_dataset(generation_dir: Path, tmp_path: Path) -> None:
    write_records(
        [{**_generated(i), "id": f"held-out-{i}", "split": "test"} for i in range(2)],
        generation_dir / "shards/part-00003.jsonl",
    )
    out = tmp_path / "export"
    args = ["data", "build", "--source", "generated", "--data-dir", str(generation_dir), "--output", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    loaded = datasets.load_dataset(str(out), "generated", cache_dir=str(tmp_path / "cache"))
    assert {split: len(rows) for split, rows in loaded.items()} == {"train": 7, "test": 2}
    assert set(loaded["test"]["split"]) == {"test"}
    assert "ChemActor generated data" in (out / "README.md").read_text(encoding="utf-8")
    missing = CliRunner().invoke(app, ["data", "build", "--source", "generated", "--output", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "--data-dir" in missing.output
