"""Seed builders on the reference data, the export that ``load_dataset`` reads, and bad input."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from chemactor.builders import build_seeds, load_seeds
from chemactor.chem import canonicalize_reaction, detokenize_reaction, reaction_precursors
from chemactor.cli import app
from chemactor.data import SEED_SOURCES, RecordError, get_meta, text_hash
from chemactor.hub import ExportError, export_dataset


def _ord_rows(shared_data: Path) -> int:
    """Reactions in the ORD file: 390 in the shipped sample, 14,251 in the full reference data."""
    with gzip.open(shared_data / "ord_r2d" / "reactions.jsonl.gz", "rt", encoding="utf-8") as handle:
        return sum(1 for _ in handle)


@pytest.fixture(scope="session")
def seed_export(seed_builds, tmp_path_factory) -> Path:
    summaries = {name: build.summary() for name, build in seed_builds.items()}
    configs = {name: build.dataset for name, build in seed_builds.items()}
    return export_dataset(configs, tmp_path_factory.mktemp("export") / "seeds", summaries=summaries)


def _pairs(shared_data: Path, source: str) -> list[dict]:
    with (shared_data / source / "pairs.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_paragraph2actions_keeps_upstream_splits_and_text_byte_for_byte(seed_builds, shared_data: Path) -> None:
    dataset = seed_builds["paragraph2actions"].dataset
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 80, "validation": 10, "test": 10}
    split_names = {"train": "train", "valid": "validation", "test": "test"}
    expected = defaultdict(list)
    for pair in _pairs(shared_data, "paragraph2actions"):
        expected[split_names.get(pair["split"], pair["split"])].append((pair["sentence"], pair["actions"]))
    for split, rows in dataset.items():
        assert list(zip(rows["description"], rows["actions"], strict=True)) == expected[split]
        assert set(rows["split"]) == {split}
    assert any("\u200c" in actions for rows in dataset.values() for actions in rows["actions"])


def test_smiles2actions_rows_are_canonical_with_ordered_precursors(seed_builds, shared_data: Path) -> None:
    dataset = seed_builds["smiles2actions"].dataset
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 100, "validation": 10, "test": 10}
    built = [row for split in ("train", "validation", "test") for row in dataset[split]]
    pairs = sorted(_pairs(shared_data, "smiles2actions"), key=lambda p: ("train", "valid", "test").index(p["split"]))
    for row, pair in zip(built, pairs, strict=True):
        reaction = detokenize_reaction(pair["reaction_smiles_tokenized"])
        meta = get_meta(row)
        assert row["reaction_smiles"] == canonicalize_reaction(reaction)
        assert row["actions"] == pair["actions_with_placeholders"]
        assert meta["actions_style"] == "placeholder"
        assert meta["precursors"] == reaction_precursors(reaction)
        placeholders = [int(n) for n in re.findall(r"\$(\d+)\$", row["actions"])]
        assert max(placeholders, default=0) <= len(meta["precursors"])


def test_ord_counts_every_row_and_splits_by_procedure_text(seed_builds, shared_data: Path) -> None:
    build = seed_builds["ord"]
    summary = build.summary()
    ord_rows = _ord_rows(shared_data)
    assert sum(summary["rows"].values()) + sum(summary["dropped"].values()) == ord_rows
    assert summary["dropped"] == {"empty reaction SMILES": 8}
    assert summary["cross_split_texts"] == 0
    splits_of_text = defaultdict(set)
    for split, rows in build.dataset.items():
        assert 0.05 < len(rows) / ord_rows < 0.85
        for text in rows["description"]:
            splits_of_text[text_hash(text)].add(split)
    # The data do share paragraphs between reactions, so the check above had something to catch.
    assert len(splits_of_text) < sum(summary["rows"].values())
    assert all(len(splits) == 1 for splits in splits_of_text.values())


def test_ord_rows_keep_roles_and_provenance(seed_builds) -> None:
    rows = seed_builds["ord"].dataset["train"]
    uspto = next(row for row in rows if get_meta(row)["patent"])
    meta = get_meta(uspto)
    assert set(meta["components"]) == {"reactants", "reagents", "solvents", "catalysts", "products"}
    assert meta["ord_reaction_id"] == uspto["id"]
    assert meta["ord_dataset_id"].startswith("ord_dataset-")
    assert meta["ord_dataset_name"].startswith("uspto-grants-")
    assert uspto["description"] and uspto["reaction_smiles"].count(">") == 2
    assert canonicalize_reaction(uspto["reaction_smiles"]) == uspto["reaction_smiles"]
    components = [c for role in meta["components"].values() for c in role]
    assert components and all(set(c) == {"smiles", "name"} for c in components)
    assert any(c["name"] for c in components), "USPTO components carry names"


def test_export_round_trips_through_load_dataset(seed_export: Path, seed_builds, tmp_path: Path) -> None:
    assert sorted(datasets.get_dataset_config_names(str(seed_export))) == sorted(SEED_SOURCES)
    cache = str(tmp_path / "cache")
    for source, build in seed_builds.items():
        loaded = datasets.load_dataset(str(seed_export), source, cache_dir=cache)
        assert set(loaded) == set(build.dataset)
        for split, rows in build.dataset.items():
            assert loaded[split].features == rows.features
            assert loaded[split].to_list() == rows.to_list()
    default = datasets.load_dataset(str(seed_export), cache_dir=cache)
    assert default["train"][0]["source"] == next(iter(seed_builds))


def test_card_reports_sizes_licenses_and_leaks(seed_export: Path) -> None:
    text = (seed_export / "README.md").read_text(encoding="utf-8")
    front, body = text.split("---\n", 2)[1:]
    assert "cc-by-sa-4.0" in front and "- mit" in front and "config_name: ord" in front
    ord_line = next(line for line in body.splitlines() if line.startswith("| `ord`"))
    assert "8 (empty reaction SMILES)" in ord_line and "KiB" in ord_line
    assert "Open Reaction Database" in body and "10.1021/jacs.1c09820" in body
    assert "| `reaction_smiles` |" in body


def test_export_refuses_to_overwrite_unless_asked(seed_builds, tmp_path: Path) -> None:
    small = {"paragraph2actions": seed_builds["paragraph2actions"].dataset}
    folder = export_dataset(
        {**small, "smiles2actions": seed_builds["smiles2actions"].dataset}, tmp_path / "out", summaries={}
    )
    with pytest.raises(ExportError, match="not empty"):
        export_dataset(small, folder)
    assert (folder / "smiles2actions").is_dir()
    export_dataset(small, folder, overwrite=True)
    assert not (folder / "smiles2actions").exists()
    assert datasets.get_dataset_config_names(str(folder)) == ["paragraph2actions"]


# --- bad input ------------------------------------------------------------------------------------


def _ord_copy(tmp_path: Path, shared_data: Path, edit) -> Path:
    """A data_dir whose ORD file holds the first 30 reference rows with SMILES, changed by ``edit(lines)``."""
    with gzip.open(shared_data / "ord_r2d" / "reactions.jsonl.gz", "rt", encoding="utf-8") as handle:
        lines = [line for line in handle if json.loads(line)["reaction_smiles_unmapped"]][:30]
    edit(lines)
    (tmp_path / "ord_r2d").mkdir(parents=True)
    with gzip.open(tmp_path / "ord_r2d" / "reactions.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(lines)
    return tmp_path


def _set(lines: list[str], index: int, **values) -> None:
    row = json.loads(lines[index])
    row.update(values)
    lines[index] = json.dumps(row) + "\n"


def test_broken_jsonl_line_names_file_and_line_or_is_counted(tmp_path: Path, shared_data: Path) -> None:
    def edit(lines):
        lines[6] = '{"reaction_id": "ord-x", \n'

    data_dir = _ord_copy(tmp_path, shared_data, edit)
    with pytest.raises(RecordError, match=r"reactions\.jsonl\.gz:7: not JSON"):
        build_seeds("ord", data_dir)
    build = build_seeds("ord", data_dir, skip_bad_rows=True)
    assert build.dropped == {"not JSON": 1}
    assert sum(len(rows) for rows in build.dataset.values()) == 29


def test_unparsable_smiles_names_row_and_smiles_or_is_counted(tmp_path: Path, shared_data: Path) -> None:
    data_dir = _ord_copy(tmp_path, shared_data, lambda lines: _set(lines, 3, reaction_smiles_unmapped="CC1CC>>CCO"))
    with pytest.raises(RecordError, match=r"reactions\.jsonl\.gz:4: invalid SMILES 'CC1CC'"):
        build_seeds("ord", data_dir)
    build = build_seeds("ord", data_dir, skip_bad_rows=True)
    assert build.dropped == {"invalid SMILES": 1}


def test_row_missing_a_field_is_named(tmp_path: Path, shared_data: Path) -> None:
    def edit(lines):
        row = json.loads(lines[0])
        del row["procedure_details"]
        lines[0] = json.dumps(row) + "\n"

    with pytest.raises(RecordError, match=r":1: missing field\(s\) procedure_details"):
        build_seeds("ord", _ord_copy(tmp_path, shared_data, edit))


def test_missing_and_misaligned_files(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"paragraph2actions/src-train\.txt"):
        load_seeds("paragraph2actions", tmp_path)
    folder = tmp_path / "paragraph2actions"
    shutil.copytree(shared_data / "paragraph2actions", folder)
    (folder / "tgt-valid.txt").write_text("ADD water.\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"src-valid\.txt has 10 lines but .*tgt-valid\.txt has 1"):
        load_seeds("paragraph2actions", tmp_path)


def test_bad_reaction_in_smiles2actions_names_the_line(tmp_path: Path, shared_data: Path) -> None:
    folder = tmp_path / "smiles2actions"
    shutil.copytree(shared_data / "smiles2actions", folder)
    lines = (folder / "src-test.txt").read_text(encoding="utf-8").split("\n")
    lines[1] = "C C 1 C C >> C C"
    (folder / "src-test.txt").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(RecordError, match=r"tgt-test\.txt:2: invalid SMILES 'CC1CC'"):
        load_seeds("smiles2actions", tmp_path)


# --- the command line -------------------------------------------------------------------------------


def test_cli_build_writes_a_loadable_export(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    args = ["data", "build", "--source", "smiles2actions", "--data-dir", str(shared_data), "--output", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert '"cross_split_texts": 0' in result.output
    loaded = datasets.load_dataset(str(out), "smiles2actions", cache_dir=str(tmp_path / "cache"))
    assert len(loaded["train"]) == 100
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "not empty" in again.output


def test_cli_build_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    args = ["data", "build", "--source", "ord", "--data-dir", str(tmp_path), "--output", str(tmp_path / "x")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "missing input file" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_without_data_dir_the_upstream_files_are_downloaded(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    """The download path, against a static file server on 127.0.0.1 standing in for GitHub."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from dataset_scripts import ChemActorSeeds

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    handler = functools.partial(QuietHandler, directory=str(shared_data / "paragraph2actions"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        upstream = ChemActorSeeds.builder_configs["paragraph2actions"].upstream_files
        assert all(url.startswith("https://raw.githubusercontent.com/rxn4chemistry/") for url in upstream.values())
        builder = ChemActorSeeds(
            config_name="paragraph2actions",
            upstream_files={name: f"{base}/{name}" for name in upstream},
            cache_dir=str(tmp_path / "cache"),
        )
        builder.download_and_prepare()
        server.shutdown()
    downloaded = builder.as_dataset()
    local = load_seeds("paragraph2actions", shared_data)
    for split in local:
        assert downloaded[split].to_list() == local[split].to_list()


def test_card_sizes_catch_a_truncated_split(seed_builds, tmp_path: Path) -> None:
    dataset = seed_builds["paragraph2actions"].dataset
    folder = export_dataset({"paragraph2actions": dataset}, tmp_path / "out")
    dataset["train"].select(range(79)).to_parquet(str(folder / "paragraph2actions/train-00000-of-00001.parquet"))
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):
        datasets.load_dataset(str(folder), "paragraph2actions", cache_dir=str(tmp_path / "cache"))


def test_ord_rows_with_wrong_field_types_are_named_or_counted(tmp_path: Path, shared_data: Path) -> None:
    def edit(lines):
        _set(lines, 2, procedure_details=42)
        _set(lines, 4, reactants=[{"smiles": 7, "name": "water"}])
        _set(lines, 6, solvents={"smiles": "O"})

    data_dir = _ord_copy(tmp_path / "data", shared_data, edit)
    with pytest.raises(RecordError, match=r"reactions\.jsonl\.gz:3: field 'procedure_details' must be a string"):
        build_seeds("ord", data_dir)
    build = build_seeds("ord", data_dir, skip_bad_rows=True)
    assert sum(build.dropped.values()) == 3
    assert sum(len(rows) for rows in build.dataset.values()) == 27

    result = CliRunner().invoke(
        app,
        ["data", "build", "--source", "ord", "--data-dir", str(data_dir), "--skip-bad-rows", "-o", str(tmp_path / "x")],
    )
    assert result.exit_code == 0, result.output
    assert '"dropped": {"field \'procedure_details\' must be a string, got int": 1' in result.output


def test_repeated_ord_ids_are_refused_or_dropped(tmp_path: Path, shared_data: Path) -> None:
    data_dir = _ord_copy(tmp_path, shared_data, lambda lines: lines.append(lines[0]))
    with pytest.raises(RecordError, match=r"reactions\.jsonl\.gz:31: duplicate id '.+' \(first at .*:1\)"):
        build_seeds("ord", data_dir)
    build = build_seeds("ord", data_dir, skip_bad_rows=True)
    assert build.dropped == {"duplicate id": 1}
    assert sum(len(rows) for rows in build.dataset.values()) == 30


def test_overwrite_removes_only_what_the_export_wrote(seed_builds, tmp_path: Path) -> None:
    small = {"paragraph2actions": seed_builds["paragraph2actions"].dataset}
    folder = export_dataset({**small, "smiles2actions": seed_builds["smiles2actions"].dataset}, tmp_path / "out")
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    (folder / "smiles2actions" / "extra.parquet").write_bytes(b"mine too")
    export_dataset(small, folder, overwrite=True)
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (folder / "smiles2actions" / "extra.parquet").read_bytes() == b"mine too"
    assert sorted(path.name for path in (folder / "smiles2actions").iterdir()) == ["extra.parquet"]
    assert datasets.get_dataset_config_names(str(folder)) == ["paragraph2actions"]

    user = tmp_path / "user"
    user.mkdir()
    (user / "README.md").write_text("my own readme", encoding="utf-8")
    with pytest.raises(ExportError, match="no chemactor export wrote"):
        export_dataset(small, user, overwrite=True)
    assert (user / "README.md").read_text(encoding="utf-8") == "my own readme"
    (folder / ".chemactor-export.json").write_text('{"files": ["../user/README.md"]}', encoding="utf-8")
    with pytest.raises(ExportError, match="outside the export folder"):
        export_dataset(small, folder, overwrite=True)
    assert (user / "README.md").exists()


def test_build_refuses_an_output_that_is_inside_or_holds_its_input(shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(shared_data / "paragraph2actions", data / "paragraph2actions")
    before = sorted(str(path) for path in data.rglob("*"))
    runner = CliRunner()
    for output, relation in ((data, "is the input"), (data / "export", "is inside"), (tmp_path, "contains")):
        args = ["data", "build", "--source", "paragraph2actions", "--data-dir", str(data), "-o", str(output)]
        result = runner.invoke(app, [*args, "--overwrite"])
        assert result.exit_code == 1 and relation in result.output, result.output
    assert sorted(str(path) for path in data.rglob("*")) == before, "the source data is untouched"
