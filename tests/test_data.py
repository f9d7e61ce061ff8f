"""The record schema and the task views that training, inference and evaluation share."""

from __future__ import annotations

import json

import pytest

from chemactor.data import (
    PROMPT_VERSION,
    RECORD_FEATURES,
    RECORD_FIELDS,
    RecordError,
    get_meta,
    has_task,
    make_record,
    prompt_for,
    task_view,
    text_hash,
    to_dataset,
    update_meta,
    validate_record,
)
from chemactor.errors import ConfigError


def _record(**overrides):
    values = {
        "id": "p2a-1",
        "source": "paragraph2actions",
        "description": "The mixture was stirred for 2 h.",
        "actions": "STIR for 2 h.",
    }
    values.update(overrides)
    return make_record(**values)


def test_make_record_fills_every_field_and_serializes_meta():
    record = _record(meta={"b": 1, "a": "x"})
    assert tuple(record) == RECORD_FIELDS
    assert record["meta"] == '{"a": "x", "b": 1}'
    assert record["reaction_smiles"] == ""
    assert get_meta(record) == {"a": "x", "b": 1}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"split": "dev"}, "field 'split' is 'dev'"),
        ({"id": ""}, "field 'id' is empty"),
        ({"meta": "{not json"}, "field 'meta' is not JSON"),
        ({"meta": "[1, 2]"}, "must be a JSON object"),
    ],
)
def test_bad_rows_raise_record_error_naming_the_field(overrides, message):
    with pytest.raises(RecordError, match=message):
        _record(**overrides)


def test_validate_record_names_location_and_missing_fields():
    with pytest.raises(RecordError, match=r"data.jsonl:7: missing field\(s\) actions, meta"):
        validate_record(
            {"id": "x", "source": "s", "reaction_smiles": "", "description": "", "split": "train"}, where="data.jsonl:7"
        )


def test_update_meta_keeps_existing_keys():
    record = update_meta(_record(meta={"generator": "m"}), divergence=0.5)
    assert get_meta(record) == {"generator": "m", "divergence": 0.5}


def test_to_dataset_has_record_features():
    dataset = to_dataset([_record(id="a"), _record(id="b", split="test")])
    assert dataset.features == RECORD_FEATURES
    assert dataset["split"] == ["train", "test"]


def test_task_views_pair_input_and_output():
    record = _record(reaction_smiles="CCO>>CC=O")
    d2a = task_view(record, "d2a")
    assert d2a["prompt"].endswith("### Output:\n")
    assert "The mixture was stirred for 2 h." in d2a["prompt"]
    assert d2a["completion"] == "STIR for 2 h.\n"
    assert d2a["prompt"] == prompt_for("d2a", record["description"])
    r2d = task_view(record, "r2d", version=PROMPT_VERSION)
    assert "CCO>>CC=O" in r2d["prompt"] and r2d["completion"].startswith("The mixture")


def test_a2d_is_the_way_back_from_actions_to_text():
    record = _record()
    a2d = task_view(record, "a2d")
    assert "STIR for 2 h." in a2d["prompt"] and a2d["completion"] == "The mixture was stirred for 2 h.\n"
    assert a2d["prompt"] != task_view(record, "d2a")["prompt"]


def test_task_view_refuses_rows_without_input_and_unknown_tasks():
    record = _record()
    assert not has_task(record, "r2d")
    with pytest.raises(RecordError, match="no 'reaction_smiles'"):
        task_view(record, "r2d")
    with pytest.raises(ConfigError, match=r"unknown task 'd2x' \(did you mean 'd2a'\?\); known: r2d, d2a, r2a, a2d"):
        task_view(record, "d2x")
    with pytest.raises(ConfigError, match=r"unknown prompt 'view_d2a-v0' \(did you mean 'view_d2a-v1'\?\)"):
        task_view(record, "d2a", version="v0")


def test_text_hash_ignores_case_and_spacing_only():
    assert text_hash("Stir  the\nmixture") == text_hash("stir the mixture")
    assert text_hash("stir the mixture") != text_hash("stir the mixtures")
    assert json.dumps(text_hash("a"))  # a plain string, usable as a key


def test_examples_is_a_seed_source_that_needs_no_data_dir():
    from chemactor.builders import load_seeds
    from chemactor.examples import load_examples

    seeds, examples = load_seeds("examples"), load_examples()
    assert {split: seeds[split]["id"] for split in seeds} == {split: examples[split]["id"] for split in examples}


def test_the_data_layer_imports_only_downward():
    """``prompts`` sits on ``errors`` alone, ``data`` on those two; the builders and the example set on ``data``,
    ``chem`` and each other.

    Read from the source (every import, lazy ones included), so a cycle cannot hide inside a function.
    """
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "chemactor"
    allowed = {
        "prompts": {"chemactor.errors"},
        "data.py": {"chemactor.errors", "chemactor.prompts"},
        "builders": {
            "chemactor.errors",
            "chemactor.data",
            "chemactor.chem",
            "chemactor.builders",
            "chemactor.examples",
        },
        "examples": {"chemactor.errors", "chemactor.data", "chemactor.chem"},
    }
    for name, permitted in allowed.items():
        paths = [package / name] if name.endswith(".py") else sorted((package / name).glob("*.py"))
        for path in paths:
            nodes = list(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
            imported = {node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.module}
            imported |= {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
            imported = {module for module in imported if module.startswith("chemactor")}
            outside = {module for module in imported if not any(module.startswith(p) for p in permitted)}
            assert not outside, f"{path.relative_to(package)} imports {sorted(outside)}"
