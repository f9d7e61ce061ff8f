"""The Open Reaction Database's own Dataset files (*.pb, *.pb.gz), written here with ord-schema, as records."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from chemactor.builders import RowDrops, load_seeds, read_records
from chemactor.builders.ord_files import NO_CONTENT, ord_rows
from chemactor.data import RecordError, get_meta
from chemactor.generation import read_inputs

reaction_pb2 = pytest.importorskip("ord_schema.proto.reaction_pb2")
dataset_pb2 = pytest.importorskip("ord_schema.proto.dataset_pb2")
message_helpers = pytest.importorskip("ord_schema.message_helpers")

PROCEDURE = (
    "4-Bromophenol (1.73 g, 10.0 mmol) and benzyl bromide (1.31 mL, 11.0 mmol) in DMF gave the ether (2.42 g, 92%)."
)


def _compound(message, smiles: str | None, name: str | None, role: str, mass_mg: float | None = None) -> None:
    compound = message.add()
    if smiles is not None:
        compound.identifiers.add(type="SMILES", value=smiles)
    if name is not None:
        compound.identifiers.add(type="NAME", value=name)
    compound.reaction_role = reaction_pb2.ReactionRole.ReactionRoleType.Value(role)
    if mass_mg is not None:
        compound.amount.mass.value = mass_mg
        compound.amount.mass.units = reaction_pb2.Mass.MILLIGRAM


def _reaction(reaction_id: str, *, text: str = "", products: bool = True, phenol: str = "Oc1ccc(Br)cc1"):
    reaction = reaction_pb2.Reaction(reaction_id=reaction_id)
    _compound(reaction.inputs["phenol"].components, phenol, "4-bromophenol", "REACTANT", 1730)
    _compound(reaction.inputs["bromide"].components, "BrCc1ccccc1", "benzyl bromide", "REACTANT")
    _compound(reaction.inputs["bromide"].components, "CN(C)C=O", "DMF", "SOLVENT")
    _compound(reaction.inputs["workup"].components, "O", "water", "WORKUP")
    if products:
        _compound(reaction.outcomes.add().products, "Brc1ccc(OCc2ccccc2)cc1", "ether", "PRODUCT")
    reaction.notes.procedure_details = text
    reaction.provenance.doi = "10.1000/example"
    return reaction


def _write(path: Path, *reactions) -> Path:
    dataset = dataset_pb2.Dataset(name="tiny", dataset_id="ord_dataset-test", reactions=list(reactions))
    path.parent.mkdir(parents=True, exist_ok=True)
    message_helpers.save_message(dataset, path)
    return path


@pytest.fixture
def ord_file(tmp_path: Path) -> Path:
    nothing = reaction_pb2.Reaction(reaction_id="ord-nothing")
    nothing.inputs["x"].components.add().identifiers.add(type="NAME", value="something unnamed")
    return _write(
        tmp_path / "dataset.pb.gz",
        _reaction("ord-full", text=PROCEDURE),
        _reaction("ord-no-text"),
        _reaction("ord-no-product", text="The mixture was stirred.", products=False),
        _reaction("ord-bad", text="A reaction with a bad SMILES.", phenol="c1ccc1C(=O"),
        nothing,
    )


def test_reactions_become_records_with_roles_text_and_provenance(ord_file: Path) -> None:
    drops = RowDrops(skip_bad_rows=True)
    rows = dict(ord_rows(ord_file, drops))
    assert list(rows) == [
        f"{ord_file}:reaction 1 (ord-full)",
        f"{ord_file}:reaction 2 (ord-no-text)",
        f"{ord_file}:reaction 3 (ord-no-product)",
    ]
    assert dict(drops) == {"invalid SMILES": 1, NO_CONTENT: 1}
    full, no_text, no_product = rows.values()
    assert full["id"] == "ord-full" and full["source"] == "ord"
    # inputs in the order of their names (a protobuf map has none of its own)
    assert full["reaction_smiles"] == "BrCc1ccccc1.Oc1ccc(Br)cc1>CN(C)C=O>Brc1ccc(OCc2ccccc2)cc1"
    assert full["description"] == PROCEDURE
    meta = get_meta(full)
    assert meta["ord_dataset_id"] == "ord_dataset-test" and meta["ord_dataset_name"] == "tiny"
    assert meta["ord_reaction_id"] == "ord-full" and meta["doi"] == "10.1000/example"
    assert meta["components"]["reactants"][1] == {
        "name": "4-bromophenol",
        "smiles": "Oc1ccc(Br)cc1",
        "amount": "1730 mg",
    }
    assert meta["components"]["solvents"] == [{"name": "DMF", "smiles": "CN(C)C=O"}]
    assert "water" not in full["meta"]  # a workup compound is not part of the reaction
    assert no_text["description"] == "" and no_text["reaction_smiles"] == full["reaction_smiles"]
    assert no_product["reaction_smiles"] == "" and no_product["description"] == "The mixture was stirred."


def test_a_bad_smiles_names_the_file_and_the_reaction(ord_file: Path) -> None:
    with pytest.raises(RecordError, match=r"dataset\.pb\.gz:reaction 4 \(ord-bad\): invalid SMILES 'c1ccc1C\(=O'"):
        read_records(ord_file)


def test_read_records_and_generation_inputs_take_ord_files(ord_file: Path, tmp_path: Path) -> None:
    dataset = read_records(ord_file, skip_bad_rows=True)
    assert dataset["id"] == ["ord-full", "ord-no-text", "ord-no-product"]
    plain = _write(tmp_path / "plain" / "dataset.pb", _reaction("ord-a", text=PROCEDURE), _reaction("ord-b"))
    assert [row["id"] for row in read_inputs(str(plain))] == ["ord-a", "ord-b"]
    # a seed source like the named ones, split by each reaction's procedure text
    seeds = load_seeds(str(plain))
    assert sum(len(part) for part in seeds.values()) == 2 and set(seeds) <= {"train", "validation", "test"}
    # a folder of ORD files reads like a folder of shards
    _write(tmp_path / "plain" / "more.pb.gz", _reaction("ord-c", text="Text."))
    assert sorted(read_records(tmp_path / "plain")["id"]) == ["ord-a", "ord-b", "ord-c"]


def test_a_cut_off_file_is_an_error_naming_it(tmp_path: Path) -> None:
    whole = _write(tmp_path / "whole.pb", _reaction("ord-a", text=PROCEDURE), _reaction("ord-b", text=PROCEDURE))
    cut = tmp_path / "cut.pb.gz"
    cut.write_bytes(gzip.compress(whole.read_bytes()[:-40]))
    with pytest.raises(RecordError, match=r"cut\.pb\.gz: not a readable ORD Dataset file: the file ends inside"):
        read_records(cut)


def test_the_core_reads_records_without_ord_schema(tmp_path: Path, ord_file: Path) -> None:
    """Without the extra, JSONL still reads and an ORD file asks for ``chemactor[ord]`` in one line."""
    script = f"""
import sys
sys.modules["ord_schema"] = None  # as if the package were not installed
from chemactor.builders import read_records
from chemactor.errors import MissingExtraError
assert len(read_records("examples")) > 0
try:
    read_records({str(ord_file)!r})
except MissingExtraError as exc:
    print(exc)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == (
        "reading Open Reaction Database files needs the 'ord' extra (ord_schema not installed): "
        "pip install 'chemactor[ord]'"
    )
