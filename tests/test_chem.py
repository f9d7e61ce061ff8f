"""chemactor.chem on the real reactions of the reference data, plus property tests for the parsers."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rdkit import Chem

from chemactor.chem import (
    InvalidSmilesError,
    canonicalize_reaction,
    canonicalize_smiles,
    detokenize_reaction,
    reaction_precursors,
    reaction_products,
    reaction_roles,
)

KNOWN = ["CCO", "OCC", "c1ccccc1", "C1=CC=CC=C1", "[Na+]~[Cl-]", "O=C([O-])[O-]~[K+]~[K+]", "CC(=O)O", "N#N"]


def _smiles2actions_pairs(shared_data: Path) -> list[dict]:
    with (shared_data / "smiles2actions" / "pairs.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_smiles2actions_placeholders_point_at_existing_precursors(shared_data: Path) -> None:
    pairs = _smiles2actions_pairs(shared_data)
    assert len(pairs) == 120
    for pair in pairs:
        reaction = detokenize_reaction(pair["reaction_smiles_tokenized"])
        assert " " not in reaction
        precursors = reaction_precursors(reaction)
        indices = [int(n) for n in re.findall(r"\$(\d+)\$", pair["actions_with_placeholders"])]
        assert max(indices, default=0) <= len(precursors), (reaction, pair["actions_with_placeholders"])
        # One precursor per compound: '~' keeps a salt together, '.' separates compounds.
        assert len(precursors) == sum(len(side.split(".")) for side in reaction.split(">")[:2] if side)


def test_fragment_bonds_make_one_precursor_and_disappear_from_the_canonical_reaction() -> None:
    reaction = detokenize_reaction("C C O . O = C ( [O-] ) [O-] ~ [K+] ~ [K+] >> C C O C")
    assert reaction == "CCO.O=C([O-])[O-]~[K+]~[K+]>>CCOC"
    assert reaction_precursors(reaction) == ["CCO", "O=C([O-])[O-].[K+].[K+]"]
    canonical = canonicalize_reaction(reaction)
    assert "~" not in canonical
    assert canonical == "CCO.O=C([O-])[O-].[K+].[K+]>>CCOC"
    # Without '~' each fragment is a compound of its own: the grouping lives only in the '~' form.
    assert len(reaction_precursors(canonical)) == 4


def test_order_is_kept_and_roles_split_by_side() -> None:
    reaction = "OCC.C1=CC=CC=C1>[Pd]>C(C)O"
    assert reaction_roles(reaction) == {"reactants": ["CCO", "c1ccccc1"], "agents": ["[Pd]"], "products": ["CCO"]}
    assert reaction_precursors(reaction) == ["CCO", "c1ccccc1", "[Pd]"]
    assert reaction_products(reaction) == ["CCO"]
    assert canonicalize_reaction(reaction) == "CCO.c1ccccc1>[Pd]>CCO"


def test_ord_reactions_canonicalize_to_a_fixed_point(shared_data: Path) -> None:
    with gzip.open(shared_data / "ord_r2d" / "reactions.jsonl.gz", "rt", encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(1500), handle, strict=False)]
    reactions = [reaction for line in lines if (reaction := json.loads(line)["reaction_smiles_unmapped"])]
    assert len(reactions) > 300  # all 382 of the shipped sample, the first 1,499 of the full set
    for reaction in reactions:
        canonical = canonicalize_reaction(reaction)
        assert canonicalize_reaction(canonical) == canonical
        sides = [side.split(".") if side else [] for side in reaction.split(">")]
        assert reaction_precursors(reaction) == [canonicalize_smiles(s) for s in sides[0] + sides[1]]


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("C1CC", "not parsable"),
        ("C(C)(C)(C)(C)C", "valence"),
        ("", "empty"),
        ("c1cccc1", "kekulize"),
    ],
)
def test_invalid_smiles_names_the_molecule_and_the_reason(smiles: str, reason: str) -> None:
    with pytest.raises(InvalidSmilesError, match=reason) as info:
        canonicalize_smiles(smiles)
    assert info.value.smiles == smiles
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("reaction", "offending"),
    [
        ("CCO.C1CC>>CC", "C1CC"),
        ("CCO>>", "CCO>>"),
        ("CCO>CC", "CCO>CC"),
        ("CCO..CC>>CC", "CCO..CC>>CC"),
        (">>CC", ">>CC"),
    ],
)
def test_invalid_reaction_names_the_offending_part(reaction: str, offending: str) -> None:
    with pytest.raises(InvalidSmilesError) as info:
        canonicalize_reaction(reaction)
    assert info.value.smiles == offending
    assert repr(reaction) in str(info.value)


def test_rdkit_stays_silent(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidSmilesError):
        canonicalize_smiles("C(C)(C)(C)(C)C")
    with pytest.raises(InvalidSmilesError):
        canonicalize_smiles("C1CC")
    assert capfd.readouterr().err == ""


@given(st.text(max_size=30))
def test_any_text_is_canonical_smiles_or_a_typed_error(text: str) -> None:
    try:
        result = canonicalize_smiles(text)
    except InvalidSmilesError as exc:
        assert exc.smiles == text
    else:
        assert Chem.MolFromSmiles(result) is not None
        assert canonicalize_smiles(result) == result


@given(st.text(alphabet="CNOc1()=#.>~[]+- ", max_size=40))
def test_any_reaction_text_is_canonical_or_a_typed_error(text: str) -> None:
    try:
        result = canonicalize_reaction(text)
    except InvalidSmilesError:
        return
    assert result.count(">") == 2
    assert canonicalize_reaction(result) == result


@given(
    st.lists(st.sampled_from(KNOWN), min_size=1, max_size=4),
    st.lists(st.sampled_from(KNOWN), max_size=2),
    st.sampled_from(KNOWN),
)
def test_detokenize_inverts_character_tokenization(reactants: list[str], agents: list[str], product: str) -> None:
    reaction = f"{'.'.join(reactants)}>{'.'.join(agents)}>{product}"
    assert detokenize_reaction(" ".join(reaction)) == reaction
    assert reaction_precursors(reaction) == [canonicalize_smiles(s) for s in reactants + agents]
