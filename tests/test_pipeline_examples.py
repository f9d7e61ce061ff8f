"""The example set the project ships: schema, splits, chemistry, grammar, originality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chemactor.chem import canonicalize_reaction, canonicalize_smiles, reaction_products
from chemactor.data import RecordError, get_meta, text_hash
from chemactor.examples import EXAMPLES_DIR, example_records, load_examples


def test_splits_are_disjoint_and_sized_for_a_quickstart():
    examples = load_examples()
    assert {split: examples[split].num_rows for split in examples} == {"train": 56, "validation": 12, "test": 12}
    seen: dict[str, str] = {}
    for split, dataset in examples.items():
        for record in dataset:
            assert record["split"] == split
            key = text_hash(record["description"])
            assert seen.setdefault(key, split) == split, record["description"]
    ids = [record["id"] for record in example_records()]
    assert len(ids) == len(set(ids))


def test_reactions_are_canonical_and_their_products_match_the_roles():
    reactions = [record for record in example_records() if record["reaction_smiles"]]
    assert len(reactions) == 10
    for record in reactions:
        assert canonicalize_reaction(record["reaction_smiles"]) == record["reaction_smiles"]
        roles = get_meta(record)["components"]
        expected = [canonicalize_smiles(component["smiles"]) for component in roles["products"]]
        assert reaction_products(record["reaction_smiles"]) == expected
        # the starting materials are the ones the procedure names (hydrogen gas is implied by "under hydrogen")
        for component in roles["reactants"]:
            assert component["name"].lower() in record["description"].lower(), component["name"]


def test_text_is_not_taken_from_the_reference_data(shared_data: Path):
    reference = {
        text_hash(json.loads(line)["sentence"])
        for line in (shared_data / "paragraph2actions" / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert not {text_hash(record["description"]) for record in example_records()} & reference


def test_a_broken_line_is_named_by_file_and_line(tmp_path: Path):
    (tmp_path / "procedures.jsonl").write_text(
        (EXAMPLES_DIR / "procedures.jsonl").read_text(encoding="utf-8").splitlines()[0] + '\n{"split": "train"}\n',
        encoding="utf-8",
    )
    (tmp_path / "reactions.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(RecordError, match=r"procedures\.jsonl:2: missing field 'description'"):
        example_records(tmp_path)


def test_every_annotation_is_in_the_readable_grammar():
    from chemactor.actions import format_actions, parse_actions

    for record in example_records():
        assert format_actions(parse_actions(record["actions"])) == record["actions"], record["id"]


def test_every_annotation_validates_against_its_reaction():
    from chemactor.actions import parse_actions, validate_actions

    for record in example_records():
        assert validate_actions(parse_actions(record["actions"]), record["reaction_smiles"]) == [], record["id"]
